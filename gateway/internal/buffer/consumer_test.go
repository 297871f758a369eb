package buffer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// consumerRead reads everything a consumer still has from its cursor on.
func consumerRead(t *testing.T, c *Consumer) (first uint64, n int) {
	t.Helper()
	from := c.Confirmed() + 1
	for {
		ch, err := c.Read(from, 41)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Len() == 0 {
			return first, n
		}
		if first == 0 {
			first = ch.First
		}
		n += ch.Len()
		from = ch.First + uint64(ch.Len())
	}
}

// TestConsumersTrimAtSlowest: a segment leaves the buffer only when the
// primary (Trim) and every secondary have confirmed it; each reads from
// its own cursor, and the primary's view (Acked, Stats.Readings) is its
// own whatever the secondaries do.
func TestConsumersTrimAtSlowest(t *testing.T) {
	steps := []struct {
		name               string
		primary, a, b      uint64 // confirmations applied in order
		wantFirstHeld      uint64 // the lowest cursor + 1
		wantReadings, held uint64
		segments           int // of 10 items, and the empty one being written
	}{
		{"nothing confirmed", 0, 0, 0, 1, 100, 100, 11},
		{"primary ahead", 60, 0, 0, 1, 40, 100, 11},
		{"one platform half way", 60, 35, 0, 1, 40, 100, 11},
		{"both platforms past two segments", 60, 35, 25, 26, 40, 75, 9},
		{"a platform ahead of the primary", 60, 90, 59, 60, 40, 41, 6},
		{"everything", 100, 100, 100, 0, 0, 0, 1},
	}
	// Every record fills a segment: 10 items each.
	b := open(t, t.TempDir(), func(o *Options) { o.Consumers = []string{"a", "b"}; o.SegmentBytes = 1 })
	appendN(t, b, 100, 10)
	ca, cb := b.Consumer("a"), b.Consumer("b")
	if ca == nil || cb == nil || b.Consumer("c") != nil {
		t.Fatal("Consumer handles wrong")
	}
	for _, s := range steps {
		if err := b.Trim(s.primary); err != nil {
			t.Fatal(err)
		}
		if err := ca.Confirm(s.a); err != nil {
			t.Fatal(err)
		}
		if err := cb.Confirm(s.b); err != nil {
			t.Fatal(err)
		}
		st := b.Stats()
		if st.Readings != s.wantReadings || st.Held != s.held || b.Acked() != s.primary || st.Segments != s.segments {
			t.Fatalf("%s: readings %d held %d acked %d segments %d; want %d, %d, %d, %d", s.name, st.Readings, st.Held,
				b.Acked(), st.Segments, s.wantReadings, s.held, s.primary, s.segments)
		}
		if s.held > 0 {
			if c, _ := b.Read(1, 1); c.First != s.wantFirstHeld {
				t.Fatalf("%s: first held %d, want %d", s.name, c.First, s.wantFirstHeld)
			}
		}
		for _, c := range []*Consumer{ca, cb} {
			first, n := consumerRead(t, c)
			if want := 100 - c.Confirmed(); uint64(n) != want || (n > 0 && first != c.Confirmed()+1) {
				t.Fatalf("%s: consumer %s reads %d items from %d; want %d from %d", s.name, c.Name(), n, first, want,
					c.Confirmed()+1)
			}
		}
	}
}

// TestConsumerCursorsSurviveRestart: after a clean stop every cursor is
// exact; after a crash (the directory as it was, not closed) a cursor is
// never ahead of what its consumer confirmed and never below what is gone;
// a new consumer starts at the end, and a consumer no longer configured
// is forgotten, freeing its backlog.
func TestConsumerCursorsSurviveRestart(t *testing.T) {
	tests := []struct {
		name  string
		crash bool
		// want cursors of primary, a, b after the restart
		want [3]uint64
	}{
		{"clean stop", false, [3]uint64{50, 30, 70}},
		// The marks are written at most once an hour here, and a and b
		// wrote theirs (0) at Open: on disk are 10, 0, 0. What is gone
		// (up to the lowest cursor in memory, 30) raises them all to 30,
		// which none had not confirmed.
		{"crash", true, [3]uint64{30, 30, 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mod := func(o *Options) { o.Consumers = []string{"a", "b"}; o.AckMarkEvery = time.Hour; o.SegmentBytes = 1 }
			b := open(t, dir, mod)
			appendN(t, b, 100, 10)
			ca, cb := b.Consumer("a"), b.Consumer("b")
			for _, step := range [][3]uint64{{10, 10, 10}, {50, 30, 70}} {
				b.Trim(step[0])
				ca.Confirm(step[1])
				cb.Confirm(step[2])
			}
			if tt.crash {
				dir = crashCopy(t, dir)
			} else {
				b.Close()
			}
			// Reopened: the gap between the lowest cursor (a at 30 or the
			// marks at 10) and the first segment on disk is gone.
			b2 := open(t, dir, mod)
			got := [3]uint64{b2.Acked(), b2.Consumer("a").Confirmed(), b2.Consumer("b").Confirmed()}
			if got != tt.want {
				t.Fatalf("cursors %v after the restart, want %v", got, tt.want)
			}
			if n := b2.Next(); n != 101 {
				t.Fatalf("next %d, want 101", n)
			}
			b2.Close()

			// b dropped from the config, c added: c starts at the end, b's
			// cursor is gone, and the segments only b held are freed.
			mod2 := func(o *Options) { o.Consumers = []string{"a", "c"}; o.AckMarkEvery = time.Hour; o.SegmentBytes = 1 }
			b3 := open(t, dir, mod2)
			if c := b3.Consumer("c"); c == nil || c.Confirmed() != 100 {
				t.Fatalf("new consumer c: %+v", c)
			}
			if _, err := os.Stat(filepath.Join(dir, "cursor-b")); !os.IsNotExist(err) {
				t.Fatalf("cursor of b still there: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "cursor-c")); err != nil {
				t.Fatalf("cursor of c not written at once: %v", err)
			}
			if c, _ := b3.Read(1, 1); c.First != tt.want[1]+1 {
				t.Fatalf("first held %d, want %d (a's cursor + 1)", c.First, tt.want[1]+1)
			}
		})
	}
}

// TestStalledConsumerDropOldest: a platform that never confirms, the cloud
// confirming everything: the buffer stays within its budget, the platform's
// backlog is bounded, every item it lost is counted for it, and the cloud
// loses nothing and sees no gap event.
func TestStalledConsumerDropOldest(t *testing.T) {
	b := open(t, t.TempDir(), func(o *Options) {
		o.SegmentBytes, o.MaxBytes, o.Consumers = 2000, 10000, []string{"platform"}
	})
	c := b.Consumer("platform")
	for i := 0; i < 3000; i += 2 {
		seq, err := b.Append(readings(i, 2))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Trim(seq + 1); err != nil { // the cloud keeps up
			t.Fatal(err)
		}
	}
	s, cs := b.Stats(), c.Stats()
	if s.Bytes > 10000+2000 || s.Dropped != 0 || s.Gaps != 0 || s.Readings != 0 {
		t.Fatalf("stats %+v: want within budget, nothing dropped for the cloud, no gap event", s)
	}
	// Every item appended is either still held for the platform or counted
	// as dropped for it; the level event (high) is an item too.
	if cs.Dropped == 0 || cs.Dropped+cs.Pending != s.Appended {
		t.Fatalf("platform: dropped %d + pending %d != appended %d", cs.Dropped, cs.Pending, s.Appended)
	}
	if first, n := consumerRead(t, c); uint64(n) != cs.Pending || first != cs.Confirmed+1 {
		t.Fatalf("platform reads %d from %d; stats %+v", n, first, cs)
	}
}

// TestStalledConsumerDropNewest: under drop_newest a platform's backlog
// never makes the buffer refuse what the cloud would get: segments only
// the platform still needs go first (counted for it). With the cloud
// stalled too, new items are refused and counted for both.
func TestStalledConsumerDropNewest(t *testing.T) {
	tests := []struct {
		name        string
		cloudAcks   bool
		wantRefused bool
	}{
		{"cloud keeps up", true, false},
		{"cloud stalled too", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := open(t, t.TempDir(), func(o *Options) {
				o.SegmentBytes, o.MaxBytes, o.Overflow, o.Consumers = 1000, 3000, OverflowDropNewest, []string{"platform"}
			})
			c := b.Consumer("platform")
			refused := 0
			for i := 0; i < 1000; i += 2 {
				seq, err := b.Append(readings(i, 2))
				if errors.Is(err, ErrFull) {
					refused += 2
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if tt.cloudAcks {
					b.Trim(seq + 1)
				}
			}
			s, cs := b.Stats(), c.Stats()
			if (refused > 0) != tt.wantRefused || s.Refused != uint64(refused) || s.Bytes > 3000 {
				t.Fatalf("refused %d; stats %+v", refused, s)
			}
			if cs.Dropped+cs.Pending != s.Appended+uint64(refused) {
				t.Fatalf("platform: dropped %d + pending %d != appended %d + refused %d", cs.Dropped, cs.Pending,
					s.Appended, refused)
			}
			if tt.cloudAcks && (s.Dropped != 0 || s.Gaps != 0) {
				t.Fatalf("the cloud lost items: %+v", s)
			}
			if !tt.cloudAcks {
				if p := b.PrimaryStats(); p.Dropped != uint64(refused) {
					t.Fatalf("primary dropped %d, want the %d refused", p.Dropped, refused)
				}
			}
		})
	}
}

// TestConsumersReadIndependently: two consumers reading at different
// places each keep their own read position.
func TestConsumersReadIndependently(t *testing.T) {
	b := open(t, t.TempDir(), func(o *Options) { o.Consumers = []string{"a"}; o.SegmentBytes = 500 })
	appendN(t, b, 200, 4)
	ca := b.Consumer("a")
	var gotA, gotP []telemetry.Reading
	for pa, pp := uint64(1), uint64(150); pa <= 200 || pp <= 200; {
		if pa <= 200 {
			ch, err := ca.Read(pa, 7)
			if err != nil {
				t.Fatal(err)
			}
			gotA = append(gotA, ch.Readings...)
			pa = ch.First + uint64(ch.Len())
		}
		if pp <= 200 {
			ch, err := b.Read(pp, 5)
			if err != nil {
				t.Fatal(err)
			}
			gotP = append(gotP, ch.Readings...)
			pp = ch.First + uint64(ch.Len())
		}
	}
	if len(gotA) != 200 || len(gotP) != 51 || gotA[199].Value != 199 || gotP[0].Value != 149 {
		t.Fatalf("a read %d, primary %d", len(gotA), len(gotP))
	}
}

// TestConsumerReadOneKind: a consumer's chunk holds readings or events,
// never both, so each item's sequence is known.
func TestConsumerReadOneKind(t *testing.T) {
	b := open(t, t.TempDir(), func(o *Options) { o.Consumers = []string{"a"} })
	b.Append(readings(0, 3))
	b.AppendEvents([]telemetry.Event{{Device: "d", Kind: "connection", Time: t0, Clock: telemetry.ClockNTP,
		Attrs: map[string]string{"state": "lost"}}})
	b.Append(readings(3, 2))
	var kinds []string
	for from := uint64(1); ; {
		ch, err := b.Consumer("a").Read(from, 100)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Len() == 0 {
			break
		}
		kinds = append(kinds, fmt.Sprintf("%d:%dr%de", ch.First, len(ch.Readings), len(ch.Events)))
		from = ch.First + uint64(ch.Len())
	}
	if got := strings.Join(kinds, " "); got != "1:3r0e 4:0r1e 5:2r0e" {
		t.Fatalf("chunks %s", got)
	}
}

// TestRetainForHistory: segments every consumer has confirmed stay on disk
// within RetainBytes (oldest deleted first), readable by ReadHistory and
// not by Read; they survive a restart, do not count towards the fill
// level, and are the first to go at the budget, with nothing counted as
// lost.
func TestRetainForHistory(t *testing.T) {
	dir := t.TempDir()
	var segSize int64
	mod := func(o *Options) {
		o.Consumers, o.SegmentBytes, o.RetainBytes, o.MaxBytes = []string{"a"}, 1, 3*segSize, 8*segSize
	}
	{ // the size of one record of 10 readings, one per segment
		probe := open(t, t.TempDir(), nil)
		probe.Append(readings(0, 10))
		segSize = probe.Stats().Bytes
	}
	b := open(t, dir, mod)
	appendN(t, b, 60, 10) // 6 segments
	b.Trim(60)
	b.Consumer("a").Confirm(60)
	s := b.Stats()
	if s.RetainedBytes != 3*segSize || s.Held != 0 || s.High {
		t.Fatalf("stats %+v: want 3 segments retained, nothing held, not high", s)
	}
	if b.Oldest() != 31 {
		t.Fatalf("oldest %d, want 31", b.Oldest())
	}
	if c, _ := b.Read(1, 100); c.Len() != 0 {
		t.Fatalf("Read hands out %d confirmed items", c.Len())
	}
	hist := func(b *Buffer) []float64 {
		var vals []float64
		for from := uint64(1); ; {
			c, err := b.ReadHistory(from, 7)
			if err != nil {
				t.Fatal(err)
			}
			if c.Len() == 0 {
				return vals
			}
			for _, r := range c.Readings {
				vals = append(vals, r.Value)
			}
			from = c.First + uint64(c.Len())
		}
	}
	wantRange(t, hist(b), 30, 59)
	b.Close()
	b = open(t, dir, mod)
	wantRange(t, hist(b), 30, 59)
	// Unconfirmed items fill the budget: the retained segments go first,
	// nothing is lost for anyone, no gap event.
	for i := 60; i < 130; i += 10 {
		if _, err := b.Append(readings(i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	s = b.Stats()
	if s.Dropped != 0 || s.Gaps != 0 || b.Consumer("a").Stats().Dropped != 0 || s.RetainedBytes != 0 {
		t.Fatalf("stats %+v: the retained segments must go first, with nothing lost", s)
	}
	if got := hist(b); len(got) == 0 || got[0] < 60 {
		t.Fatalf("history starts at %v", got[:1])
	}
}

// TestNoFalseDropAfterCrash: a crash with a platform's cursor file ahead of
// the lazily written acked file, and the segments every consumer had
// confirmed already deleted: reopening reports nothing missing and counts
// nothing dropped (it used to count the deleted items as lost).
func TestNoFalseDropAfterCrash(t *testing.T) {
	dir := t.TempDir()
	mod := func(o *Options) { o.AckMarkEvery = time.Hour; o.SegmentBytes = 1 }
	b := open(t, dir, mod)
	appendN(t, b, 50, 10)
	b.Close()
	withPlatform := func(o *Options) { mod(o); o.Consumers = []string{"a"} }
	b = open(t, dir, withPlatform) // a is new: its cursor is written at 50
	b.Trim(10)                     // the first trim writes acked=10
	appendN(t, b, 50, 10)
	b.Trim(60)
	b.Consumer("a").Confirm(60) // neither mark written (lazy): 1–60 deleted
	r := open(t, crashCopy(t, dir), withPlatform)
	if st := r.Stats(); st.Dropped != 0 {
		t.Errorf("nothing was dropped, Stats.Dropped = %d", st.Dropped)
	}
	if r.Acked() > 60 || r.Consumer("a").Confirmed() > 60 {
		t.Errorf("cursors ahead of what was confirmed: acked %d, a %d", r.Acked(), r.Consumer("a").Confirmed())
	}
}

// TestConsumerNote: a consumer's note survives a reopen and is forgotten
// with the consumer.
func TestConsumerNote(t *testing.T) {
	dir := t.TempDir()
	withA := func(o *Options) { o.Consumers = []string{"a"} }
	b := open(t, dir, withA)
	if n, err := b.Consumer("a").Note(); n != nil || err != nil {
		t.Fatalf("a new consumer's note %q, %v", n, err)
	}
	if err := b.Consumer("a").SetNote([]byte("2026-12-02T06:00:00Z\n")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = open(t, dir, withA)
	if n, err := b.Consumer("a").Note(); string(n) != "2026-12-02T06:00:00Z\n" || err != nil {
		t.Fatalf("note after reopening %q, %v", n, err)
	}
	b.Close()
	b = open(t, dir, func(*Options) {}) // a is no longer configured
	b.Close()
	b = open(t, dir, withA) // configured again: starts afresh
	if n, err := b.Consumer("a").Note(); n != nil || err != nil {
		t.Fatalf("a consumer added again kept its old note %q, %v", n, err)
	}
}
