package clock

import (
	"reflect"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// taken returns the changes waiting on the timeline.
func taken(tl *Timeline) []Change {
	var out []Change
	for {
		select {
		case c := <-tl.Changes():
			out = append(out, c)
		default:
			return out
		}
	}
}

// TestChanges drives a source and its timeline through boots and clock
// steps: each change in how times are stamped is announced once, a synced
// one with the correction re-stamping applies.
func TestChanges(t *testing.T) {
	boot := time.Unix(10, 0).UTC() // 1970, no RTC
	set := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		start time.Time
		fixed telemetry.ClockQuality
		steps func(b *fakeBoot)
		want  []Change
	}{
		{"boot in 1970, then NTP sets the clock", boot, telemetry.ClockUnknown, func(b *fakeBoot) {
			b.run(5 * time.Second)
			b.stamp()
			b.run(55 * time.Second)
			b.stamp()
			b.stamp()
			b.run(5 * time.Second) // mono 65 s
			b.wall = set
			b.stamp()
			b.run(time.Second)
			b.stamp()
		}, []Change{
			{At: boot.Add(5 * time.Second), Quality: telemetry.ClockUnsynced},
			// The first time (mono 5 s) is re-stamped to set − 60 s.
			{Synced: true, At: set, Quality: telemetry.ClockNTP, Correction: set.Add(-60 * time.Second).Sub(boot.Add(5 * time.Second)),
				Corrected: true},
		}},
		{"starts with the clock set", set, telemetry.ClockUnknown, func(b *fakeBoot) {
			b.stamp()
			b.run(time.Minute)
			b.stamp()
		}, nil},
		{"stepped back to 1970 and set again, a GPS clock", set, telemetry.ClockGPS, func(b *fakeBoot) {
			b.stamp()
			b.run(time.Second)
			b.wall = boot // a bad RTC read at runtime
			b.stamp()
			b.run(time.Second)
			b.stamp()
			b.run(10 * time.Second)
			b.wall = set.Add(20 * time.Second)
			b.stamp()
		}, []Change{
			{At: boot, Quality: telemetry.ClockUnsynced},
			{Synced: true, At: set.Add(20 * time.Second), Quality: telemetry.ClockGPS,
				Correction: set.Add(20 * time.Second).Sub(boot.Add(11 * time.Second)), Corrected: true},
		}},
	}
	for _, tc := range tests {
		b := newBoot(tc.start)
		b.src.fixed = tc.fixed
		tc.steps(b)
		if got := taken(b.tl); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
		if b.tl.Lost() != 0 {
			t.Errorf("%s: %d changes lost", tc.name, b.tl.Lost())
		}
	}
}

// TestChangesBounded: a clock that flaps while nobody takes the changes
// keeps at most maxChanges of them and counts the rest.
func TestChangesBounded(t *testing.T) {
	b := newBoot(time.Unix(0, 0).UTC())
	set := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for i := range 20 {
		b.wall = time.Unix(int64(i), 0) // unsynced
		b.stamp()
		b.wall = set
		b.stamp()
	}
	if got := len(taken(b.tl)); got != maxChanges || b.tl.Lost() != 40-maxChanges {
		t.Fatalf("%d changes kept, %d lost; want %d and %d", got, b.tl.Lost(), maxChanges, 40-maxChanges)
	}
}
