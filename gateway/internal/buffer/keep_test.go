package buffer

import (
	"testing"
	"time"
)

// TestKeepAcked: acknowledged items stay on disk for the KeepAcked window,
// so a rewind (a cloud restored from a backup asking again) gets them; the
// window ends, the budget wins, a restart keeps them, and what is gone is
// counted exactly.
func TestKeepAcked(t *testing.T) {
	const total = 400 // in records of 10, several segments of 4 KiB
	cases := []struct {
		name        string
		keep        time.Duration
		maxBytes    int64 // 0: ample
		later       time.Duration
		reopen      bool
		rewind      uint64 // 0: Acked() - 49, the last 50 acknowledged
		wantAll     bool   // the rewind finds everything from rewind on
		wantMissing bool   // … or some are gone (counted in missing)
		keptDropped bool   // the budget deleted kept items in their window
	}{
		{name: "within the window", keep: 72 * time.Hour, later: 71 * time.Hour, rewind: 1, wantAll: true},
		{name: "the last 50 within the window", keep: 72 * time.Hour, later: time.Hour, wantAll: true},
		{name: "after the window", keep: 72 * time.Hour, later: 73 * time.Hour, rewind: 1, wantMissing: true},
		{name: "no window", keep: 0, rewind: 1, wantMissing: true},
		{name: "kept across a restart", keep: 72 * time.Hour, later: time.Hour, reopen: true, rewind: 1, wantAll: true},
		{name: "the budget wins", keep: 72 * time.Hour, maxBytes: 8 << 10, later: time.Hour, rewind: 1,
			wantMissing: true, keptDropped: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			now := t0
			mod := func(o *Options) {
				o.SegmentBytes, o.KeepAcked, o.Now = 4096, tc.keep, func() time.Time { return now }
				if tc.maxBytes > 0 {
					o.MaxBytes = tc.maxBytes
				}
			}
			b := open(t, dir, mod)
			if tc.maxBytes > 0 {
				appendN(t, b, 300, 10) // fits the budget: a whole segment and a part
			} else {
				appendN(t, b, total, 10)
			}
			acked := b.Next() - 1
			if err := b.Trim(acked); err != nil {
				t.Fatal(err)
			}
			if s := b.Stats(); s.Readings != 0 || (tc.keep > 0 && b.Oldest() != 1) {
				t.Fatalf("after the ack: %d awaiting, oldest on disk %d; want 0 and the acknowledged ones kept", s.Readings,
					b.Oldest())
			}
			now = now.Add(tc.later)
			if tc.maxBytes > 0 {
				// New readings need the room the kept ones take.
				if _, err := b.Append(readings(1000, 10)); err != nil {
					t.Fatal(err)
				}
				appendN(t, b, 200, 10)
			} else {
				// An ack after the window has passed lets the trim see it.
				if _, err := b.Append(readings(1000, 1)); err != nil {
					t.Fatal(err)
				}
				if err := b.Trim(b.Next() - 1); err != nil {
					t.Fatal(err)
				}
			}
			if tc.reopen {
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
				b = open(t, dir, mod)
			}
			s := b.Stats()
			if s.Gaps != 0 || s.Dropped != 0 {
				t.Fatalf("gaps %d, dropped %d: deleting acknowledged items loses nothing of the cloud's", s.Gaps, s.Dropped)
			}
			if got := s.KeptDropped > 0; got != tc.keptDropped {
				t.Fatalf("kept items deleted by the budget: %d; want some: %v", s.KeptDropped, tc.keptDropped)
			}
			seq := tc.rewind
			if seq == 0 {
				seq = acked - 49
			}
			cursor := b.Acked()
			from, missing, err := b.Rewind(seq)
			if err != nil {
				t.Fatal(err)
			}
			if want := b.Oldest(); tc.wantMissing && (from != max(seq, want) || missing != from-seq) {
				t.Fatalf("rewind to %d: from %d, missing %d; want from the oldest kept %d, %d missing", seq, from, missing,
					want, want-seq)
			}
			if tc.wantAll && (from != seq || missing != 0) {
				t.Fatalf("rewind to %d: from %d, missing %d; want everything", seq, from, missing)
			}
			if from <= cursor && b.Acked() != from-1 {
				t.Fatalf("cursor %d after the rewind; want %d", b.Acked(), from-1)
			}
			first, vals := drain(t, b, b.Acked()+1, 64)
			if from <= cursor && (first != from || uint64(len(vals)) != b.Next()-from) {
				t.Fatalf("read again from %d: %d items; want %d from %d", first, len(vals), b.Next()-from, from)
			}
			if mark, _, err := readMark(dir + "/acked"); from <= cursor && (err != nil || mark != b.Acked()) {
				t.Fatalf("cursor on disk %d (%v); want %d written at once", mark, err, b.Acked())
			}
		})
	}
}

// TestRewindBeyondCursor: a request for what the cloud has not
// acknowledged yet changes nothing.
func TestRewindBeyondCursor(t *testing.T) {
	b := open(t, t.TempDir(), func(o *Options) { o.KeepAcked = time.Hour })
	appendN(t, b, 50, 10)
	if err := b.Trim(20); err != nil {
		t.Fatal(err)
	}
	from, missing, err := b.Rewind(30)
	if err != nil || from != 21 || missing != 0 || b.Acked() != 20 {
		t.Fatalf("rewind past the cursor: from %d, missing %d, %v, cursor %d; want 21, 0, nil, 20", from, missing, err,
			b.Acked())
	}
	if _, _, err := b.Rewind(0); err == nil {
		t.Fatal("rewind to 0 accepted")
	}
}
