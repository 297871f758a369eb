package buffer

import (
	"errors"
	"time"
)

// Keeping acknowledged items (Options.KeepAcked). A segment every consumer
// has confirmed is not deleted at once but kept until KeepAcked has passed
// since its last item was confirmed, so that a cloud restored from a
// backup can ask for them again (Rewind). The budget wins: kept segments
// are the oldest, so they are the first to go when room is needed, and a
// kept segment deleted before its time is counted (Stats.KeptDropped) and
// logged. After a restart a kept segment's time counts from its file's
// last write, which is never later than its confirmation.

// now is the buffer's clock (Options.Now).
func (b *Buffer) now() time.Time {
	if b.opts.Now != nil {
		return b.opts.Now()
	}
	return time.Now()
}

// keeps reports whether s, confirmed by every consumer, is still within the
// KeepAcked window at now.
func (b *Buffer) keeps(s *segment, now time.Time) bool {
	return b.opts.KeepAcked > 0 && !s.confirmedAt.IsZero() && now.Sub(s.confirmedAt) < b.opts.KeepAcked
}

// stampConfirmed notes when each segment every consumer has confirmed
// became so: its window starts then.
func (b *Buffer) stampConfirmed(now time.Time) {
	for _, s := range b.segs {
		if s.last > b.base || s.last < s.first {
			return
		}
		if s.confirmedLast != s.last {
			s.confirmedAt, s.confirmedLast = now, s.last
		}
	}
}

// dropKept accounts for s, confirmed by every consumer, deleted for the
// budget: counted and logged when its KeepAcked window had not ended.
func (b *Buffer) dropKept(s *segment) {
	if !b.keeps(s, b.now()) {
		return
	}
	n := s.last - s.first + 1
	b.stats.KeptDropped += n
	b.log.Warn("buffer full: deleted acknowledged items before their keep_acked window ended", "items", n,
		"from_seq", s.first, "to_seq", s.last, "confirmed_at", s.confirmedAt, "keep_acked", b.opts.KeepAcked,
		"max_bytes", b.opts.MaxBytes)
}

// Rewind moves the primary consumer's cursor back so that the items from
// seq on are read, and sent to the cloud, again: a cloud restored from a
// backup lost what it had acknowledged since (telemetry.Ack.ResendFrom).
// Only what the buffer still holds can be sent again: it returns the first
// sequence that will be, which is above seq when the items before it are
// gone (trimmed once their KeepAcked window ended, or never kept), and how
// many of the items from seq up to the old cursor are gone. A seq beyond
// the cursor changes nothing. The cursor is written at once.
func (b *Buffer) Rewind(seq uint64) (from, missing uint64, err error) {
	if seq == 0 {
		return 0, 0, errors.New("rewind to sequence 0")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, 0, ErrClosed
	}
	c := b.cons[0]
	if seq > c.confirmed {
		return c.confirmed + 1, 0, nil
	}
	from = max(seq, b.oldest())
	missing = min(from, c.confirmed+1) - seq
	if from > c.confirmed {
		return c.confirmed + 1, missing, nil
	}
	c.confirmed = from - 1
	b.base = min(b.base, from-1)
	for _, s := range b.segs {
		if s.last > b.base {
			s.confirmedAt, s.confirmedLast = time.Time{}, 0
		}
	}
	b.resetCursor(&b.cur)
	if err := b.writeCursor(c); err != nil {
		return from, missing, err
	}
	b.wake()
	return from, missing, nil
}

// Kept reports the oldest item the buffer still holds (Next when it holds
// none) and the primary consumer's cursor, the last item confirmed: the
// items Rewind can send again are oldest … acked.
func (b *Buffer) Kept() (oldest, acked uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.oldest(), b.cons[0].confirmed
}

// oldest is the first item held, b.next when none is. b.mu is held.
func (b *Buffer) oldest() uint64 {
	for _, s := range b.segs {
		if s.last >= s.first {
			return s.first
		}
	}
	return b.next
}
