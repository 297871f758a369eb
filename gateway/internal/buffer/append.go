package buffer

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Append stores rs (valid readings) durably, as the fsync policy says, and
// returns the sequence of the first. Under drop_newest a full buffer
// refuses them with ErrFull (they are counted and recorded as a gap).
func (b *Buffer) Append(rs []telemetry.Reading) (uint64, error) {
	if len(rs) == 0 {
		return 0, errors.New("nothing to append")
	}
	return b.append(len(rs), false, readingsSpan(rs), func(p []byte) []byte { return telemetry.AppendRows(p, rs) })
}

// AppendEvents stores es like Append stores readings; events and readings
// share one sequence.
func (b *Buffer) AppendEvents(es []telemetry.Event) (uint64, error) {
	if len(es) == 0 {
		return 0, errors.New("nothing to append")
	}
	return b.append(len(es), true, eventsSpan(es), func(p []byte) []byte { return telemetry.AppendEvents(p, es) })
}

// append writes one record and, with FsyncAlways, waits until it is on
// disk: appends from several goroutines that arrive during one fsync are
// covered by the next one together (group commit).
func (b *Buffer) append(count int, events bool, span timeSpan, encode func([]byte) []byte) (uint64, error) {
	b.mu.Lock()
	first, err := b.write(count, events, span, encode)
	pos := b.written
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if b.opts.Fsync == FsyncAlways {
		if err := b.waitSynced(pos); err != nil {
			return first, err
		}
	}
	return first, nil
}

// write appends one record of count items under b.mu, applies the byte
// budget, and wakes the readers.
func (b *Buffer) write(count int, events bool, span timeSpan, encode func([]byte) []byte) (uint64, error) {
	if b.closed {
		return 0, ErrClosed
	}
	if b.broken != nil {
		return 0, b.broken
	}
	first := b.next
	rec, err := encodeRecord(first, count, events, encode)
	if err != nil {
		return 0, err
	}
	if b.opts.Overflow == OverflowDropNewest && !b.makeRoom(int64(len(rec))) {
		b.refuse(count, span)
		if b.checkHigh(true) {
			b.wake()
		}
		return 0, ErrFull
	}
	if err := b.writeRecord(rec, first, count); err != nil {
		return 0, err
	}
	b.checkHigh(false)
	if b.opts.Overflow == OverflowDropOldest {
		b.enforceBudget()
	}
	b.wake()
	return first, nil
}

// wake tells Notify's callers that items arrived.
func (b *Buffer) wake() {
	close(b.notify)
	b.notify = make(chan struct{})
}

// writeRecord writes rec, holding items first … first+count-1, at the tail.
func (b *Buffer) writeRecord(rec []byte, first uint64, count int) error {
	tail := b.segs[len(b.segs)-1]
	if _, err := b.w.Write(rec); err != nil {
		// Cut a partial record so that no record ever follows a torn one;
		// if even that fails, refuse appends until a restart recovers.
		if terr := b.w.Truncate(tail.size); terr != nil {
			b.broken = fmt.Errorf("buffer unusable until restart after a failed write: %w", err)
		}
		return fmt.Errorf("cannot append to buffer: %w", err)
	}
	tail.size += int64(len(rec))
	tail.last = first + uint64(count) - 1
	b.next = tail.last + 1
	b.written += int64(len(rec))
	b.stats.Bytes += int64(len(rec))
	b.stats.Appended += uint64(count)
	if tail.size >= b.opts.SegmentBytes {
		if err := b.rotate(); err != nil {
			return fmt.Errorf("cannot start a new segment: %w", err)
		}
	}
	return nil
}

// waitSynced returns once every byte written before pos is on disk. The
// first waiter runs the fsync; the others wait for it, and whoever finds
// its bytes still unsynced afterwards runs the next.
func (b *Buffer) waitSynced(pos int64) error {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	for b.synced < pos {
		if b.syncing {
			b.syncCond.Wait()
			continue
		}
		b.syncing = true
		b.syncMu.Unlock()
		err := b.syncTail()
		b.syncMu.Lock()
		b.syncing = false
		b.syncCond.Broadcast()
		if err != nil {
			return err
		}
	}
	return nil
}

// syncTail fsyncs the segment being written and marks what was written
// before it as synced.
func (b *Buffer) syncTail() error {
	if b.syncHook != nil {
		b.syncHook()
	}
	b.mu.Lock()
	f, target, next, closed := b.w, b.written, b.next, b.closed
	b.mu.Unlock()
	if closed || f == nil {
		return nil // Close synced and marked everything
	}
	if err := f.Sync(); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return nil // rotated meanwhile: rotate synced it
		}
		return fmt.Errorf("cannot sync buffer: %w", err)
	}
	b.markSynced(target, next)
	return nil
}

// markSynced records that the bytes written before pos, the items before
// sequence next, are on disk.
func (b *Buffer) markSynced(pos int64, next uint64) {
	for {
		d := b.durable.Load()
		if next <= d || b.durable.CompareAndSwap(d, next) {
			break
		}
	}
	b.syncMu.Lock()
	if pos > b.synced {
		b.synced = pos
	}
	b.syncs++
	b.syncCond.Broadcast()
	b.syncMu.Unlock()
}

// syncEvery is the FsyncInterval background syncer.
func (b *Buffer) syncEvery(d time.Duration) {
	defer close(b.stopped)
	t := time.NewTicker(d)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		b.mu.Lock()
		written := b.written
		b.mu.Unlock()
		b.syncMu.Lock()
		dirty := b.synced < written
		b.syncMu.Unlock()
		if !dirty {
			continue
		}
		if err := b.syncTail(); err != nil {
			if !failing {
				b.log.Error("cannot sync buffer; retrying", "err", err)
			}
			failing = true
			continue
		}
		failing = false
	}
}

// timeSpan is the first and last acquisition time of some items.
type timeSpan struct{ first, last time.Time }

func (s *timeSpan) add(t time.Time) {
	if s.first.IsZero() || t.Before(s.first) {
		s.first = t
	}
	if t.After(s.last) {
		s.last = t
	}
}

func (s *timeSpan) merge(o timeSpan) {
	if !o.first.IsZero() {
		s.add(o.first)
		s.add(o.last)
	}
}

func readingsSpan(rs []telemetry.Reading) timeSpan {
	var s timeSpan
	for i := range rs {
		s.add(rs[i].Time)
	}
	return s
}

func eventsSpan(es []telemetry.Event) timeSpan {
	var s timeSpan
	for i := range es {
		s.add(es[i].Time)
	}
	return s
}
