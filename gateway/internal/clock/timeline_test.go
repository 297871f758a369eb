package clock

import (
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// fakeBoot drives a timeline and a source through a boot: mono is the
// monotonic clock, wall what the wall clock reads.
type fakeBoot struct {
	mono time.Duration
	wall time.Time
	tl   *Timeline
	src  *Source
}

func newBoot(bootWall time.Time) *fakeBoot {
	b := &fakeBoot{wall: bootWall}
	b.tl = &Timeline{now: func() time.Time { return b.wall }, elapsed: func() time.Duration { return b.mono },
		anchor: bootWall, changes: make(chan Change, maxChanges)}
	b.src = New(telemetry.ClockUnknown, b.tl)
	b.src.now = b.tl.now
	b.src.sync = func() (bool, bool) { return true, true }
	return b
}

// run lets d pass on both clocks.
func (b *fakeBoot) run(d time.Duration) { b.mono += d; b.wall = b.wall.Add(d) }

// stamp is what the poller does: the quality, then the time.
func (b *fakeBoot) stamp() (time.Time, telemetry.ClockQuality) {
	q := b.src.Quality()
	return b.wall, q
}

func TestTimelineRestamps(t *testing.T) {
	boot := time.Unix(10, 0).UTC() // 1970, no RTC
	set := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

	b := newBoot(boot)
	b.run(5 * time.Second)
	t1, q1 := b.stamp()
	b.run(55 * time.Second)
	t2, q2 := b.stamp()
	if q1 != telemetry.ClockUnsynced || q2 != telemetry.ClockUnsynced {
		t.Fatalf("qualities in 1970: %v %v", q1, q2)
	}
	if _, ok := b.tl.Restamp(t1); ok {
		t.Fatal("re-stamped while the clock is still unsynced")
	}
	b.run(60 * time.Second) // mono 120 s: NTP sets the clock
	b.wall = set
	b.run(30 * time.Second) // sent a little later

	tests := []struct {
		name string
		in   time.Time
		want time.Time
		ok   bool
	}{
		{"first reading", t1, set.Add(-115 * time.Second), true},
		{"second reading", t2, set.Add(-60 * time.Second), true},
		{"dated a little before the clock was asked", t1.Add(-2 * time.Second), set.Add(-117 * time.Second), true},
		{"outside every epoch (an earlier boot's 1970)", boot.Add(48 * time.Hour), boot.Add(48 * time.Hour), false},
	}
	for _, tc := range tests {
		got, ok := b.tl.Restamp(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("%s: Restamp(%v) = %v, %v; want %v, %v", tc.name, tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestTimelineSteppedTwice: a clock stepped to another wrong time while
// unsynced starts a second epoch, re-stamped by its own offset; times the
// clock showed twice (stepped back over them) are not re-stamped.
func TestTimelineSteppedTwice(t *testing.T) {
	boot := time.Unix(0, 0).UTC()
	set := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	b := newBoot(boot)
	b.run(10 * time.Second)
	a, _ := b.stamp() // mono 10 s
	b.run(10 * time.Second)
	b.stamp()                                            // mono 20 s, wall 20 s
	b.wall = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) // a bad RTC read
	b.run(10 * time.Second)
	c, _ := b.stamp()                   // mono 30 s
	b.wall = boot.Add(15 * time.Second) // stepped back into the first epoch's span
	b.run(time.Second)
	b.stamp() // mono 31 s
	b.wall = set

	if got, ok := b.tl.Restamp(c); !ok || !got.Equal(set.Add(-time.Second)) {
		t.Errorf("second epoch: %v, %v; want %v", got, ok, set.Add(-time.Second))
	}
	if got, ok := b.tl.Restamp(a); ok {
		t.Errorf("a time shown twice was re-stamped to %v", got)
	}
	if len(b.tl.epochs) != 3 {
		t.Errorf("%d epochs, want 3", len(b.tl.epochs))
	}
}

func TestTimelineBoundsEpochs(t *testing.T) {
	b := newBoot(time.Unix(0, 0).UTC())
	for i := range maxEpochs + 10 {
		b.wall = time.Unix(int64(i)*3600, 0) // stepped every time
		b.run(time.Second)
		b.stamp()
	}
	if len(b.tl.epochs) != maxEpochs {
		t.Fatalf("%d epochs kept, want %d", len(b.tl.epochs), maxEpochs)
	}
}
