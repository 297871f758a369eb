package ingest

import (
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// trimCovered drops from b the items c already covers and returns how
// many: a gateway that sends again after an ack timeout or a restart cuts
// its batches anew, so a resend can overlap batches that are stored, or in
// a group in flight, without being covered by any one of them. Writing
// only the rest keeps every point written once and judged once. The batch's
// range (first … last) stays the caller's, for its ack and its record; an
// overlap with a group in flight is safe because this batch's group waits
// for that one's data and fails with it (group.go).
//
// It must run before anything else removes items: Readings[i] has sequence
// FirstSeq+i and the events follow.
func trimCovered(b *telemetry.Batch, c store.Commit) int {
	first, last := b.FirstSeq, b.LastSeq()
	if b.Len() == 0 || !overlaps(c, first, last) {
		return 0
	}
	n := 0
	rs := b.Readings[:0:0]
	for i := range b.Readings {
		if seq := first + uint64(i); c.Covers(seq, seq) {
			n++
			continue
		}
		rs = append(rs, b.Readings[i])
	}
	es := b.Events[:0:0]
	for j := range b.Events {
		if seq := first + uint64(len(b.Readings)+j); c.Covers(seq, seq) {
			n++
			continue
		}
		es = append(es, b.Events[j])
	}
	if n > 0 {
		b.Readings, b.Events = rs, es
	}
	return n
}

// overlaps reports whether c covers any sequence of first … last.
func overlaps(c store.Commit, first, last uint64) bool {
	if first <= c.Through {
		return true
	}
	for _, s := range c.Above {
		if s.First <= last && first <= s.Last {
			return true
		}
	}
	return false
}
