package buffer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/atomicfile"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// A consumer is an uplink reading the buffer: the primary (the MQTT uplink,
// Trim and Acked) and the secondaries of Options.Consumers (HJ 212
// uplinks). Each has a cursor — every sequence up to it is confirmed by
// its peer, or was dropped for the budget — written to disk lazily, and a
// read position of its own. The buffer deletes a segment only once it lies
// at or below every cursor (docs/decisions.md, "HJ 212 uplink").
type consumer struct {
	name      string // "" for the primary
	file      string // "acked" or "cursor-<name>"
	confirmed uint64
	mark      uint64 // the cursor on disk
	saved     time.Time
	fresh     bool   // no cursor on disk at Open: written once recovered
	dropped   uint64 // items this consumer had not confirmed that the budget dropped (or refused) since Open
	cur       cursor // secondaries' read position; the primary's is Buffer.cur
}

const (
	primaryFile  = "acked"
	cursorPrefix = "cursor-"
)

// loadConsumers reads the cursors, and removes the cursor files of
// consumers no longer configured: their backlog is freed at once, and a
// consumer added again later starts afresh.
func (b *Buffer) loadConsumers() error {
	seen := map[string]bool{}
	names := append([]string{""}, b.opts.Consumers...)
	for _, name := range names {
		c := &consumer{name: name, file: primaryFile}
		if name != "" {
			if err := telemetry.CheckName("consumer", name); err != nil {
				return err
			}
			if seen[name] {
				return fmt.Errorf("consumer %q named twice", name)
			}
			seen[name] = true
			c.file = cursorPrefix + name
		}
		n, ok, err := readMark(filepath.Join(b.opts.Dir, c.file))
		if err != nil {
			return err
		}
		c.confirmed, c.mark, c.fresh = n, n, !ok && name != ""
		b.cons = append(b.cons, c)
	}
	entries, err := os.ReadDir(b.opts.Dir)
	if err != nil {
		return fmt.Errorf("cannot list buffer: %w", err)
	}
	for _, e := range entries {
		name, cursor := strings.CutPrefix(e.Name(), cursorPrefix)
		if !cursor {
			var note bool
			if name, note = strings.CutPrefix(e.Name(), notePrefix); !note {
				continue
			}
		}
		if seen[name] || strings.HasSuffix(name, ".tmp") {
			continue
		}
		if cursor {
			b.log.Info("forgetting the cursor of an uplink no longer configured; its backlog is freed", "consumer", name)
		}
		if err := os.Remove(filepath.Join(b.opts.Dir, e.Name())); err != nil {
			return fmt.Errorf("cannot remove %s: %w", e.Name(), err)
		}
	}
	return nil
}

func readMark(path string) (uint64, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("cannot read %s: %w", filepath.Base(path), err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s %q: %w", filepath.Base(path), data, err)
	}
	return n, true, nil
}

// saveNewConsumers starts each consumer without a cursor on disk at the
// end of the buffer (it gets what is appended from now on) and writes its
// cursor at once.
func (b *Buffer) saveNewConsumers() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.cons {
		if !c.fresh {
			continue
		}
		c.confirmed = b.next - 1
		c.mark = c.confirmed + 1 // differs: forces the write
		if err := b.writeCursor(c); err != nil {
			return fmt.Errorf("cannot write cursor of %s: %w", c.name, err)
		}
		c.fresh = false
		b.log.Info("new uplink reads the buffer from its end", "consumer", c.name, "from_seq", b.next)
	}
	b.updateBase()
	return nil
}

// saveCursor writes c's cursor, unless it was written less than
// AckMarkEvery ago and force is false.
func (b *Buffer) saveCursor(c *consumer, force bool) {
	if c.confirmed == c.mark || (!force && time.Since(c.saved) < b.opts.AckMarkEvery) {
		return
	}
	if err := b.writeCursor(c); err != nil {
		b.log.Error("cannot write cursor", "file", c.file, "err", err)
	}
}

func (b *Buffer) writeCursor(c *consumer) error {
	if err := atomicfile.Write(filepath.Join(b.opts.Dir, c.file), []byte(strconv.FormatUint(c.confirmed, 10)+"\n"), 0o640); err != nil {
		return err
	}
	c.saved, c.mark = time.Now(), c.confirmed
	return nil
}

// updateBase sets base to the lowest cursor.
func (b *Buffer) updateBase() {
	m := b.cons[0].confirmed
	for _, c := range b.cons[1:] {
		m = min(m, c.confirmed)
	}
	b.base = max(b.base, m)
}

// pendingAfter counts the items held above seq.
func (b *Buffer) pendingAfter(seq uint64) uint64 {
	var n uint64
	for _, s := range b.segs {
		if from := max(s.first, seq+1); s.last+1 > from {
			n += s.last + 1 - from
		}
	}
	return n
}

// Consumer is a secondary consumer's handle (Options.Consumers).
type Consumer struct {
	b *Buffer
	c *consumer
}

// Consumer returns the handle of the secondary consumer name, or nil when
// Options.Consumers does not name it.
func (b *Buffer) Consumer(name string) *Consumer {
	for _, c := range b.cons[1:] {
		if c.name == name {
			return &Consumer{b, c}
		}
	}
	return nil
}

// Name is the consumer's name.
func (c *Consumer) Name() string { return c.c.name }

// notePrefix names a consumer's note file: note-<name>.
const notePrefix = "note-"

// Note returns what the consumer last saved with SetNote; nil when nothing.
func (c *Consumer) Note() ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(c.b.opts.Dir, notePrefix+c.c.name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// SetNote saves a small note of the consumer's own beside its cursor —
// state of its uplink that must outlive a restart, such as which aggregate
// period went last — durably, at once (unlike the cursor, written lazily).
// It is forgotten with the consumer.
func (c *Consumer) SetNote(data []byte) error {
	return atomicfile.Write(filepath.Join(c.b.opts.Dir, notePrefix+c.c.name), data, 0o640)
}

// Confirmed is the consumer's cursor: every sequence up to it is
// confirmed by its peer, or was dropped for the budget.
func (c *Consumer) Confirmed() uint64 {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	return c.c.confirmed
}

// Confirm moves the consumer's cursor to through: its peer has everything
// up to it. Segments every consumer has confirmed are deleted.
func (c *Consumer) Confirm(through uint64) error { return c.b.confirm(c.c, through) }

// Read is Buffer.Read from the consumer's own read position, except that
// a chunk holds readings or events, never both: item i has the sequence
// First+i.
func (c *Consumer) Read(from uint64, limit int) (Chunk, error) {
	return c.b.read(&c.c.cur, from, limit, true, false)
}

// ConsumerStats are a consumer's levels and counters.
type ConsumerStats struct {
	Confirmed uint64 // the cursor
	Pending   uint64 // items held above the cursor
	Dropped   uint64 // items it had not confirmed that the budget dropped or refused, since Open
}

// Stats returns the consumer's levels and counters.
func (c *Consumer) Stats() ConsumerStats {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	return ConsumerStats{Confirmed: c.c.confirmed, Pending: b.pendingAfter(c.c.confirmed), Dropped: c.c.dropped}
}

// PrimaryStats are the primary consumer's (as Stats: Readings and Dropped).
func (b *Buffer) PrimaryStats() ConsumerStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.cons[0]
	return ConsumerStats{Confirmed: c.confirmed, Pending: b.pendingAfter(c.confirmed), Dropped: c.dropped}
}

// dropSegment accounts for the drop of s by the budget: each consumer that
// had not confirmed all of it counts what it loses and moves past it.
// It returns the primary's cursor before the drop.
func (b *Buffer) dropSegment(s *segment) uint64 {
	was := b.cons[0].confirmed
	for _, c := range b.cons {
		if c.confirmed >= s.last {
			continue
		}
		lost := s.last - max(c.confirmed, s.first-1)
		c.dropped += lost
		if c.name != "" {
			b.log.Error("buffer full: dropped items an HJ 212 uplink had not yet confirmed", "consumer", c.name,
				"items", lost, "from_seq", max(c.confirmed+1, s.first), "to_seq", s.last, "max_bytes", b.opts.MaxBytes)
		}
		c.confirmed = s.last
	}
	b.base = max(b.base, s.last)
	return was
}

// makeRoom, under drop_newest, deletes the oldest segments the primary
// has confirmed — held only for lagging secondaries — until n more bytes
// fit in the budget. A lagging platform never makes the buffer refuse
// what the cloud would get. It reports whether n bytes fit.
func (b *Buffer) makeRoom(n int64) bool {
	for b.stats.Bytes+n > b.opts.MaxBytes && len(b.segs) > 1 && b.segs[0].last <= b.cons[0].confirmed {
		s := b.segs[0]
		kept := s.last <= b.base
		b.dropSegment(s)
		if err := b.removeFirst(); err != nil {
			b.log.Error("cannot drop oldest buffer segment", "segment", s.path, "err", err)
			break
		}
		if kept {
			b.dropKept(s)
		}
	}
	return b.stats.Bytes+n <= b.opts.MaxBytes
}
