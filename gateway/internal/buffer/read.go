package buffer

import (
	"fmt"
	"os"
	"sort"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// cursor remembers where the last Read stopped, so sequential reads do not
// rescan a segment.
type cursor struct {
	f    *os.File
	seg  *segment
	off  int64
	next uint64
}

// Chunk is a run of consecutive items read from the buffer: readings and
// events that together have the sequences First … First+Len()-1.
type Chunk struct {
	First    uint64
	Readings []telemetry.Reading
	Events   []telemetry.Event
}

// Len is the number of items in c.
func (c Chunk) Len() int { return len(c.Readings) + len(c.Events) }

// Read returns up to limit consecutive items starting at the first
// sequence ≥ from that the buffer holds. The chunk is empty when there are
// none at or after from.
//
// Only items on disk are handed out: if some asked for are not yet (a
// group commit under way, fsync off or on an interval), Read syncs first —
// with fsync off, that is the only fsync besides one per segment.
func (b *Buffer) Read(from uint64, limit int) (Chunk, error) {
	return b.read(&b.cur, from, limit, false, false)
}

// ReadHistory reads like a consumer's Read, from the oldest item on disk on:
// those retained for history (Options.RetainBytes) that every consumer
// has confirmed included. One caller at a time.
func (b *Buffer) ReadHistory(from uint64, limit int) (Chunk, error) {
	return b.read(&b.hcur, from, limit, true, true)
}

// Oldest is the sequence of the oldest item on disk (retained for history
// or not); Next when there is none.
func (b *Buffer) Oldest() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.segs {
		if s.last >= s.first {
			return s.first
		}
	}
	return b.next
}

// read reads into a chunk from cur; with oneKind it stops where readings
// and events change places, so that every item's sequence is First plus
// its index; with history it reads below the trim point too.
func (b *Buffer) read(cur *cursor, from uint64, limit int, oneKind, history bool) (Chunk, error) {
	if err := b.makeDurable(from); err != nil {
		return Chunk{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return Chunk{}, ErrClosed
	}
	if !history {
		from = maxU(from, b.base+1)
	}
	end := min(b.next, b.durable.Load())
	if from >= end || limit <= 0 {
		return Chunk{}, nil
	}
	if cur.f == nil || cur.next != from {
		if err := b.seek(cur, from); err != nil {
			return Chunk{}, err
		}
	}
	var out Chunk
	var hdr [recordHeader]byte
	for out.Len() < limit && cur.seg != nil {
		s := cur.seg
		if cur.off >= s.size {
			if !b.advance(cur) {
				break
			}
			continue
		}
		var body []byte
		first, count, events, n, err := readRecord(cur.f, cur.off, &hdr, &body)
		if err != nil {
			b.resetCursor(cur)
			return Chunk{}, fmt.Errorf("buffer segment %s at %d: %w", s.path, cur.off, err)
		}
		if first+count <= cur.next { // wholly before the cursor
			cur.off += n
			continue
		}
		if first >= end {
			break // not on disk yet
		}
		if out.Len() > 0 && first != out.First+uint64(out.Len()) {
			break // a gap: the caller asks again from after it
		}
		if oneKind && out.Len() > 0 && events != (len(out.Events) > 0) {
			break // the other kind: the caller asks again from here
		}
		if out.Len()+int(count) > limit && out.Len() > 0 {
			break // keep records whole where we can
		}
		skip := 0
		if first < cur.next {
			skip = int(cur.next - first)
		}
		if out.Len() == 0 {
			out.First = first + uint64(skip)
		}
		take := min(int(count)-skip, limit-out.Len())
		if events {
			es, err := telemetry.DecodeEvents(body, int(count))
			if err != nil {
				b.resetCursor(cur)
				return Chunk{}, fmt.Errorf("buffer segment %s at %d: %w", s.path, cur.off, err)
			}
			out.Events = append(out.Events, es[skip:skip+take]...)
		} else {
			rs, err := telemetry.DecodeRows(body, int(count))
			if err != nil {
				b.resetCursor(cur)
				return Chunk{}, fmt.Errorf("buffer segment %s at %d: %w", s.path, cur.off, err)
			}
			out.Readings = append(out.Readings, rs[skip:skip+take]...)
		}
		cur.next = out.First + uint64(out.Len())
		if skip+take == int(count) {
			cur.off += n
		}
	}
	return out, nil
}

// makeDurable syncs the items from from on that are written but not yet
// known to be on disk.
func (b *Buffer) makeDurable(from uint64) error {
	b.mu.Lock()
	need := !b.closed && from < b.next && b.durable.Load() < b.next
	pos := b.written
	b.mu.Unlock()
	if !need {
		return nil
	}
	return b.waitSynced(pos)
}

// seek positions cur at the segment holding from (or the first after).
func (b *Buffer) seek(cur *cursor, from uint64) error {
	b.resetCursor(cur)
	i := sort.Search(len(b.segs), func(i int) bool { return b.segs[i].last >= from })
	if i == len(b.segs) {
		return nil
	}
	return b.openCursor(cur, b.segs[i], from)
}

func (b *Buffer) openCursor(cur *cursor, s *segment, next uint64) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("cannot open segment for reading: %w", err)
	}
	*cur = cursor{f: f, seg: s, next: next}
	return nil
}

// advance moves cur to the next segment; false at the end.
func (b *Buffer) advance(cur *cursor) bool {
	for i, s := range b.segs {
		if s == cur.seg && i+1 < len(b.segs) {
			next := cur.next
			b.resetCursor(cur)
			if err := b.openCursor(cur, b.segs[i+1], maxU(next, b.segs[i+1].first)); err != nil {
				b.log.Error("buffer read", "err", err)
				return false
			}
			return true
		}
	}
	return false
}

func (b *Buffer) resetCursor(cur *cursor) {
	if cur.f != nil {
		cur.f.Close()
	}
	*cur = cursor{}
}

// resetCursorsOn closes every read position on s, which is being deleted.
func (b *Buffer) resetCursorsOn(s *segment) {
	if b.cur.seg == s {
		b.resetCursor(&b.cur)
	}
	if b.hcur.seg == s {
		b.resetCursor(&b.hcur)
	}
	for _, c := range b.cons {
		if c.cur.seg == s {
			b.resetCursor(&c.cur)
		}
	}
}
