package buffer

import (
	"errors"
	"testing"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

func TestThresholds(t *testing.T) {
	tests := []struct {
		max, high, normal int64
	}{
		{10000, 8000, 7000},
		{1005, 804, 704}, // ⌈804.0⌉, ⌈703.5⌉
		{7, 6, 5},        // ⌈5.6⌉, ⌈4.9⌉
		{256 << 20, 214748365, 187904820},
	}
	for _, tc := range tests {
		b := &Buffer{opts: Options{MaxBytes: tc.max}}
		b.setThresholds()
		if b.highBytes != tc.high || b.normalBytes != tc.normal {
			t.Errorf("max %d: high at %d, normal below %d; want %d, %d", tc.max, b.highBytes, b.normalBytes, tc.high, tc.normal)
		}
	}
}

// TestLevelEvents fills a small buffer past 80 % of its budget under each
// overflow policy: one "high" event, however much more is appended; acks
// that bring it below 80 % but not 70 % say nothing; below 70 % one
// "normal" event. Reopened while high, it says high again.
func TestLevelEvents(t *testing.T) {
	for _, policy := range []string{OverflowDropOldest, OverflowDropNewest} {
		t.Run(policy, func(t *testing.T) {
			dir := t.TempDir()
			mod := func(o *Options) {
				o.SegmentBytes, o.MaxBytes, o.Overflow, o.GapDevice = 500, 10000, policy, "farm-north"
				o.Clock = func() telemetry.ClockQuality { return telemetry.ClockNTP }
			}
			b := open(t, dir, mod)
			var levels []telemetry.Event
			collect := func() { // the buffer events held, each once
				_, _, all := items(t, b)
				for _, e := range ofKind(all, telemetry.EventBuffer) {
					if !containsEvent(levels, e) {
						levels = append(levels, e)
					}
				}
			}
			// Fill to 95 %: the append that crosses 80 % writes the event.
			var below int64 // the bytes before that append
			for i := 0; b.Stats().Bytes < 9500; i += 2 {
				prev := b.Stats()
				if _, err := b.Append(readings(i, 2)); errors.Is(err, ErrFull) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				if !prev.High && b.Stats().High {
					below = prev.Bytes
				}
			}
			collect()
			s := b.Stats()
			if len(levels) != 1 || s.LevelEvents != 1 || !s.High || s.LostEvents != 0 {
				t.Fatalf("after filling to %d bytes: buffer events %+v, stats %+v; want one, high", s.Bytes, levels, s)
			}
			e := levels[0]
			if err := e.Validate(); err != nil {
				t.Fatal(err)
			}
			if e.Device != "farm-north" || e.Attrs["state"] != LevelHigh || e.Clock != telemetry.ClockNTP ||
				e.Values["max_bytes"] != 10000 || e.Values["bytes"] < 8000 || e.Values["fill"] < 0.8 || e.Values["fill"] > 1 ||
				e.Values["fill"] != e.Values["bytes"]/10000 || below >= 8000 {
				t.Errorf("high event %+v, written after an append from %d bytes", e, below)
			}

			// Acks bring the bytes down a segment at a time.
			normalSeen, band := false, false // band: seen between 70 and 80 %, still high
			for through := b.Acked() + 10; through < b.Next() && !normalSeen; through += 10 {
				if err := b.Trim(through); err != nil {
					t.Fatal(err)
				}
				s := b.Stats()
				switch {
				case s.LevelEvents == 1 && (!s.High || s.Bytes < 7000):
					t.Fatalf("stats %+v: still high means at least 70 %%", s)
				case s.LevelEvents == 1 && s.Bytes < 8000:
					band = true
				case s.LevelEvents == 2 && !s.High:
					normalSeen = true
				case s.LevelEvents != 1:
					t.Fatalf("stats %+v after a trim", s)
				}
			}
			if !normalSeen || !band {
				t.Fatalf("trims never went between 70 and 80 %% (%v) or below 70 %% (%v)", band, normalSeen)
			}
			collect()
			if len(levels) != 2 || levels[1].Attrs["state"] != LevelNormal || levels[1].Values["bytes"] >= 7000 {
				t.Fatalf("buffer events %+v; want high, then normal below 7000 bytes", levels)
			}
			// More acks, and appends below 80 %: nothing more.
			if err := b.Trim(b.Next() - 1); err != nil {
				t.Fatal(err)
			}
			appendN(t, b, 10, 2)
			if s := b.Stats(); s.LevelEvents != 2 || s.High {
				t.Fatalf("stats %+v; want no more buffer events", s)
			}

			// Filled again and reopened while high: high again at the
			// reopen, once.
			for i := 0; b.Stats().Bytes < 9000; i += 2 {
				if _, err := b.Append(readings(i, 2)); err != nil {
					t.Fatal(err)
				}
			}
			b.Close()
			b = open(t, dir, mod)
			if s := b.Stats(); !s.High || s.LevelEvents != 1 {
				t.Fatalf("reopened at 90 %%: stats %+v; want high, one event", s)
			}
		})
	}
}

func containsEvent(es []telemetry.Event, e telemetry.Event) bool {
	for _, x := range es {
		if x.Time.Equal(e.Time) && x.Attrs["state"] == e.Attrs["state"] {
			return true
		}
	}
	return false
}

// TestLevelEventWithoutRoom: under drop_newest a buffer too small to hold
// the "high" event counts it lost instead of dropping it silently, and
// still reports itself high.
func TestLevelEventWithoutRoom(t *testing.T) {
	b := open(t, t.TempDir(), func(o *Options) {
		o.SegmentBytes, o.MaxBytes, o.Overflow = 1000, 120, OverflowDropNewest
	})
	var refused bool
	for i := 0; i < 100 && !refused; i += 2 {
		_, err := b.Append(readings(i, 2))
		refused = errors.Is(err, ErrFull)
		if err != nil && !refused {
			t.Fatal(err)
		}
	}
	s := b.Stats()
	if !refused || !s.High || s.LostEvents != 1 || s.LevelEvents != 0 {
		t.Fatalf("stats %+v; want high, the event counted lost", s)
	}
	if s.Bytes > 120 {
		t.Fatalf("%d bytes held, over the 120-byte budget", s.Bytes)
	}
}
