package buffer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/atomicfile"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Trim confirms every item with a sequence ≤ through for the primary
// consumer: the cloud has stored them. Once every consumer has confirmed
// them, whole segments are deleted. The mark is written at most every
// Options.AckMarkEvery (and at Close): after a power cut the items trimmed
// since are sent again, which the cloud acknowledges without storing twice.
func (b *Buffer) Trim(through uint64) error { return b.confirm(b.cons[0], through) }

// confirm moves c's cursor to through and deletes the segments every
// consumer has confirmed.
func (b *Buffer) confirm(c *consumer, through uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	through = min(through, b.next-1)
	if through <= c.confirmed {
		return nil
	}
	c.confirmed = through
	old := b.base
	b.updateBase()
	if b.base > old {
		b.stats.Trimmed += b.countBetween(old, b.base)
	}
	now := b.now()
	b.stampConfirmed(now)
	if err := b.trimRetained(); err != nil {
		return err
	}
	if len(b.segs) == 1 && b.segs[0].last <= b.base && b.segs[0].size > 0 && b.stats.Bytes > b.opts.RetainBytes &&
		!b.keeps(b.segs[0], now) {
		// The only segment is confirmed by every consumer: start afresh.
		old := b.segs[0]
		if err := b.rotate(); err != nil {
			return err
		}
		b.segs = b.segs[1:]
		b.resetCursorsOn(old)
		if err := os.Remove(old.path); err != nil {
			return fmt.Errorf("cannot remove acknowledged segment: %w", err)
		}
		b.stats.Bytes -= old.size
	}
	b.saveCursor(c, false)
	recorded := b.recordPending()
	if b.checkNormal() || recorded {
		b.wake()
	}
	return nil
}

// trimRetained deletes the oldest segments every consumer has confirmed
// while the bytes exceed RetainBytes and their KeepAcked window has ended
// (all of them without retention).
func (b *Buffer) trimRetained() error {
	now := b.now()
	for len(b.segs) > 1 && b.segs[0].last <= b.base && b.stats.Bytes > b.opts.RetainBytes && !b.keeps(b.segs[0], now) {
		if err := b.removeFirst(); err != nil {
			return fmt.Errorf("cannot remove acknowledged segment: %w", err)
		}
	}
	return nil
}

// retainedBytes is the size of the segments every consumer has confirmed.
func (b *Buffer) retainedBytes() int64 {
	var n int64
	for _, s := range b.segs {
		if s.last > b.base || s.last < s.first {
			break
		}
		n += s.size
	}
	return n
}

// countBetween counts the items held with sequences in (lo, hi].
func (b *Buffer) countBetween(lo, hi uint64) uint64 {
	var n uint64
	for _, s := range b.segs {
		from, to := max(s.first, lo+1), min(s.last, hi)
		if to+1 > from {
			n += to + 1 - from
		}
	}
	return n
}

func (b *Buffer) removeFirst() error {
	s := b.segs[0]
	b.resetCursorsOn(s)
	if err := os.Remove(s.path); err != nil {
		return err
	}
	b.segs = b.segs[1:]
	b.stats.Bytes -= s.size
	b.stats.Segments = len(b.segs)
	return nil
}

// enforceBudget drops whole oldest segments while the buffer is over its
// byte budget (drop_oldest), keeping the segment being written, and
// appends a gap event with the exact count and time span of the
// unacknowledged items each drop lost.
func (b *Buffer) enforceBudget() {
	for b.stats.Bytes > b.opts.MaxBytes && len(b.segs) > 1 {
		s := b.segs[0]
		from := max(s.first, b.cons[0].confirmed+1)
		var d dropped
		if s.last >= from {
			d = b.readDropped(s, from)
		}
		kept := s.last <= b.base
		b.dropSegment(s)
		if err := b.removeFirst(); err != nil {
			b.log.Error("cannot drop oldest buffer segment", "segment", s.path, "err", err)
			return
		}
		if kept {
			b.dropKept(s)
		}
		if s.last < from {
			continue // the cloud had it all: only platforms lost some (dropSegment counted it)
		}
		b.stats.Dropped += d.items
		b.log.Error("buffer full: dropped the oldest unacknowledged items", "items", d.items, "from_seq", from,
			"to_seq", s.last, "first_time", d.span.first, "last_time", d.span.last, "max_bytes", b.opts.MaxBytes)
		// Gap records in the dropped segment, not yet delivered, describe
		// older drops: the new record takes their counts and spans over, so
		// the count stays exact and each drop adds one record.
		count, span, to := d.items, d.span, s.last
		for _, g := range d.gaps {
			from = min(from, uint64(g.Values["from_seq"]))
			count += uint64(g.Values["count"])
			span.merge(timeSpan{first: g.Time, last: g.Time.Add(time.Duration(g.Values["span_s"] * float64(time.Second)))})
		}
		if count > 0 {
			b.writeGap(telemetry.Event{Key: fmt.Sprintf("seq-%d-%d", from, to),
				Values: map[string]float64{"from_seq": float64(from), "to_seq": float64(to)}}, OverflowDropOldest, count, span)
		}
	}
}

// dropped is what a segment dropped for the budget held from a sequence
// on: data items (readings and events other than gap records) with their
// time span, and the drop_oldest gap records among them.
type dropped struct {
	items uint64
	span  timeSpan
	gaps  []telemetry.Event
}

// readDropped reads the items of s from seq from on. A record that cannot
// be read counts as data items with no time (the count comes from the
// sequences; damage only narrows the span).
func (b *Buffer) readDropped(s *segment, from uint64) dropped {
	d := dropped{items: s.last - from + 1}
	f, err := os.Open(s.path)
	if err != nil {
		b.log.Error("cannot read dropped segment for its time span", "err", err)
		return d
	}
	defer f.Close()
	var hdr [recordHeader]byte
	for off := int64(0); off < s.size; {
		var body []byte
		first, count, events, n, err := readRecord(f, off, &hdr, &body)
		if err != nil {
			b.log.Error("cannot read dropped segment for its time span", "err", err)
			return d
		}
		off += n
		if first+count <= from {
			continue
		}
		skip := int(max(from, first) - first)
		if !events {
			if rs, err := telemetry.DecodeRows(body, int(count)); err == nil {
				d.span.merge(readingsSpan(rs[skip:]))
			}
			continue
		}
		es, err := telemetry.DecodeEvents(body, int(count))
		if err != nil {
			continue
		}
		for _, e := range es[skip:] {
			if e.Kind == telemetry.EventGap && e.Device == b.opts.GapDevice && e.Attrs["policy"] == OverflowDropOldest {
				d.gaps = append(d.gaps, e)
				d.items--
				continue
			}
			d.span.add(e.Time)
		}
	}
	return d
}

// writeGap appends the gap event e (Key and extra Values filled in by the
// caller) for count items spanning span, and syncs it (a drop is rare and
// must not be forgotten).
func (b *Buffer) writeGap(e telemetry.Event, policy string, count uint64, span timeSpan) {
	e.Device, e.Kind, e.Clock = b.opts.GapDevice, telemetry.EventGap, telemetry.ClockUnknown
	e.Time = span.first
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Attrs = map[string]string{"reason": "buffer_full", "policy": policy}
	if e.Values == nil {
		e.Values = map[string]float64{}
	}
	e.Values["count"] = float64(count)
	e.Values["span_s"] = math.Max(0, span.last.Sub(span.first).Seconds())
	if err := b.writeEvent(e, false); err != nil {
		b.log.Error("cannot record a gap in the buffer", "items", count, "err", err)
		return
	}
	b.stats.Gaps++
}

// writeEvent appends the buffer's own event e as one record and syncs it:
// the buffer's events are rare and must not be forgotten. With
// refuseWhenFull, a record beyond the budget under drop_newest is refused.
func (b *Buffer) writeEvent(e telemetry.Event, refuseWhenFull bool) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("BUG: invalid %s event: %w", e.Kind, err)
	}
	first := b.next
	rec, err := encodeRecord(first, 1, true, func(p []byte) []byte { return telemetry.AppendEvents(p, []telemetry.Event{e}) })
	if err != nil {
		return err
	}
	if refuseWhenFull && b.opts.Overflow == OverflowDropNewest && !b.makeRoom(int64(len(rec))) {
		return ErrFull
	}
	if err := b.writeRecord(rec, first, 1); err != nil {
		return err
	}
	if b.opts.Fsync != FsyncOff {
		if err := b.w.Sync(); err != nil {
			return err
		}
		b.markSynced(b.written, b.next)
	}
	return nil
}

// pendingGap is what drop_newest refused and has not yet recorded.
type pendingGap struct {
	Count uint64    `json:"count"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	Since time.Time `json:"since"` // first refusal: names the gap
	saved time.Time
}

const pendingFile = "pending-gap"

// refuse counts items refused under drop_newest. The count is written to
// disk at most once a second, so a power cut during an overload forgets
// at most a second of refusals.
func (b *Buffer) refuse(count int, span timeSpan) {
	p := b.pending
	if p == nil {
		p = &pendingGap{Since: time.Now().UTC()}
		b.pending = p
		b.log.Error("buffer full: refusing new items until the cloud acknowledges older ones (overflow: drop_newest)",
			"max_bytes", b.opts.MaxBytes)
	}
	p.Count += uint64(count)
	s := timeSpan{first: p.First, last: p.Last}
	s.merge(span)
	p.First, p.Last = s.first, s.last
	b.stats.Dropped += uint64(count)
	b.stats.Refused += uint64(count)
	for _, c := range b.cons {
		c.dropped += uint64(count) // none of them gets these
	}
	if time.Since(p.saved) >= time.Second {
		b.savePendingGap()
	}
}

func (b *Buffer) savePendingGap() {
	if b.pending == nil {
		return
	}
	data, _ := json.Marshal(b.pending) // plain fields: cannot fail
	if err := atomicfile.Write(filepath.Join(b.opts.Dir, pendingFile), data, 0o640); err != nil {
		b.log.Error("cannot write the count of refused items", "err", err)
		return
	}
	b.pending.saved = time.Now()
}

func (b *Buffer) loadPendingGap() error {
	data, err := os.ReadFile(filepath.Join(b.opts.Dir, pendingFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", pendingFile, err)
	}
	var p pendingGap
	if err := json.Unmarshal(data, &p); err != nil || p.Count == 0 {
		b.log.Error("ignoring a damaged record of refused items", "file", pendingFile, "err", err)
		return os.Remove(filepath.Join(b.opts.Dir, pendingFile))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending = &p
	b.recordPending()
	return nil
}

// recordPending appends the gap event of refused items once there is room.
func (b *Buffer) recordPending() bool {
	p := b.pending
	if p == nil || !b.makeRoom(1024) {
		return false
	}
	b.writeGap(telemetry.Event{Key: "refused-" + strconv.FormatInt(p.Since.UnixNano(), 10)}, OverflowDropNewest, p.Count,
		timeSpan{first: p.First, last: p.Last})
	b.log.Warn("buffer has room again; recorded the items refused meanwhile", "items", p.Count)
	b.pending = nil
	if err := os.Remove(filepath.Join(b.opts.Dir, pendingFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		b.log.Error("cannot remove the record of refused items", "err", err)
	}
	return true
}
