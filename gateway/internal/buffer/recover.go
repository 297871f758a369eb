package buffer

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/atomicfile"
)

// recover scans every segment, truncates torn tails, and opens the last
// segment for appending.
func (b *Buffer) recover() error {
	entries, err := os.ReadDir(b.opts.Dir)
	if err != nil {
		return fmt.Errorf("cannot list buffer: %w", err)
	}
	var firsts []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || n == 0 {
			b.log.Warn("ignoring stray file in buffer", "file", name)
			continue
		}
		firsts = append(firsts, n)
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	// Nothing at or below the lowest cursor is needed; every sequence up to
	// the highest was handed out.
	lo, hi := b.cons[0].confirmed, b.cons[0].confirmed
	for _, c := range b.cons[1:] {
		if !c.fresh {
			lo, hi = min(lo, c.confirmed), max(hi, c.confirmed)
		}
	}
	b.base = lo
	b.next = hi + 1
	for _, first := range firsts {
		s := &segment{first: first, path: filepath.Join(b.opts.Dir, segName(first))}
		if err := b.scan(s); err != nil {
			return err
		}
		if s.last < s.first { // empty segment: nothing to keep
			// Its name is the sequence it started at, so even an empty
			// segment says no lower one may be handed out again: with the
			// trim mark lazy, the name may be the only record that the
			// items before it were acknowledged and deleted.
			b.next = max(b.next, s.first)
			if first == firsts[len(firsts)-1] {
				b.segs = append(b.segs, s) // the tail to append to
				continue
			}
			if err := os.Remove(s.path); err != nil {
				return fmt.Errorf("cannot remove empty segment: %w", err)
			}
			continue
		}
		if s.last <= b.base && b.opts.RetainBytes == 0 && b.opts.KeepAcked == 0 { // confirmed by every consumer before the crash
			if err := os.Remove(s.path); err != nil {
				return fmt.Errorf("cannot remove acknowledged segment: %w", err)
			}
			continue
		}
		if s.first < b.next && len(b.segs) > 0 {
			return fmt.Errorf("segment %s overlaps the one before it; the buffer is damaged", s.path)
		}
		// A hole between two kept segments is damage. One before the
		// first kept segment is not: what lies below it was deleted once
		// every consumer had confirmed it (their cursor files may lag, being
		// written lazily) or dropped for the budget with a gap record.
		if len(b.segs) > 0 && s.first > b.next {
			b.log.Error("items missing between segments", "from", b.next, "to", s.first-1)
			b.stats.Dropped += s.first - b.next
		}
		b.segs = append(b.segs, s)
		b.next = s.last + 1
		b.stats.Bytes += s.size
	}
	if hi+1 > b.next {
		b.next = hi + 1
	}
	// Items below the first segment are gone: deleted once every consumer
	// confirmed them, or dropped for the budget (with a gap record for
	// the primary). The cursors may be older.
	first := b.next
	if len(b.segs) > 0 {
		first = b.segs[0].first
	}
	b.base = max(b.base, first-1)
	for _, c := range b.cons {
		c.confirmed = min(max(c.confirmed, first-1), b.next-1)
	}
	for _, s := range b.segs {
		if s.last > b.base { // not yet confirmed by every consumer: its window starts when it is
			s.confirmedAt, s.confirmedLast = time.Time{}, 0
		}
	}
	if b.stats.TruncatedBytes > 0 {
		b.log.Warn("buffer recovered after an unclean stop", "truncated_bytes", b.stats.TruncatedBytes)
	}
	b.durable.Store(b.next)
	if err := b.openTail(); err != nil {
		return err
	}
	return b.trimRetained() // RetainBytes may be smaller than last time
}

// scan validates every record of s, truncating at the first bad one.
func (b *Buffer) scan(s *segment) error {
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("cannot open segment: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	s.last = s.first - 1
	var off int64
	var hdr [recordHeader]byte
	for off < info.Size() {
		first, count, _, n, err := readRecord(f, off, &hdr, nil)
		if err == nil && first != s.last+1 {
			err = fmt.Errorf("record starts at %d, expected %d", first, s.last+1)
		}
		if err != nil {
			cut := info.Size() - off
			b.log.Warn("truncating damaged buffer segment", "segment", s.path, "offset", off, "bytes", cut, "err", err)
			if err := f.Truncate(off); err != nil {
				return fmt.Errorf("cannot truncate damaged segment: %w", err)
			}
			if err := f.Sync(); err != nil {
				return err
			}
			b.stats.TruncatedBytes += cut
			break
		}
		s.last = first + count - 1
		off += n
	}
	s.size = off
	// A kept segment's window counts from its last write after a restart
	// (keep.go): its confirmation came later.
	s.confirmedAt, s.confirmedLast = info.ModTime(), s.last
	// What a crashed process wrote may still be only in the page cache;
	// it is sent from here on, so it goes to disk first.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot sync recovered segment: %w", err)
	}
	return nil
}

func (b *Buffer) openTail() error {
	if n := len(b.segs); n > 0 && b.segs[n-1].size < b.opts.SegmentBytes {
		f, err := os.OpenFile(b.segs[n-1].path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("cannot open segment for appending: %w", err)
		}
		b.w = f
		return nil
	}
	return b.rotate()
}

// rotate starts a new segment at b.next. The segment it closes is synced
// first, whatever the fsync policy (once a segment: cheap), so a group
// commit waiting on it is covered and its items may be sent; the new
// segment's name is synced into the directory, so the sequence it starts
// at survives a power cut even when the segments before it are deleted.
func (b *Buffer) rotate() error {
	if b.w != nil {
		if err := b.w.Sync(); err != nil {
			return err
		}
		b.markSynced(b.written, b.next)
		if err := b.w.Close(); err != nil {
			return err
		}
		b.w = nil
	}
	s := &segment{first: b.next, last: b.next - 1, path: filepath.Join(b.opts.Dir, segName(b.next))}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("cannot create segment: %w", err)
	}
	if err := atomicfile.SyncDir(b.opts.Dir); err != nil {
		f.Close()
		return err
	}
	b.w = f
	b.segs = append(b.segs, s)
	b.stats.Segments = len(b.segs)
	return nil
}
