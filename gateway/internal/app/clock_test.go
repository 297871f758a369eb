package app

import (
	"context"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/gateway/internal/clock"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestClockEvents hands the reporter the changes a timeline announces at a
// boot in 1970 and when NTP sets the clock: each is one clock event in a
// real buffer, the unsynced one stamped unsynced (so the uplink re-stamps
// it), the synced one with its source and the correction.
func TestClockEvents(t *testing.T) {
	boot := time.Unix(42, 0).UTC()
	set := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		change clock.Change
		want   telemetry.Event
	}{
		{"unsynced at boot", clock.Change{At: boot, Quality: telemetry.ClockUnsynced},
			telemetry.Event{Device: "gw-1", Kind: telemetry.EventClock, Time: boot, Clock: telemetry.ClockUnsynced,
				Attrs: map[string]string{"state": "unsynced"}}},
		{"synced by NTP", clock.Change{Synced: true, At: set, Quality: telemetry.ClockNTP, Correction: set.Sub(boot), Corrected: true},
			telemetry.Event{Device: "gw-1", Kind: telemetry.EventClock, Time: set, Clock: telemetry.ClockNTP,
				Attrs:  map[string]string{"state": "synced", "source": "ntp"},
				Values: map[string]float64{"offset_s": set.Sub(boot).Seconds()}}},
		{"synced, correction unknown", clock.Change{Synced: true, At: set, Quality: telemetry.ClockGPS},
			telemetry.Event{Device: "gw-1", Kind: telemetry.EventClock, Time: set, Clock: telemetry.ClockGPS,
				Attrs: map[string]string{"state": "synced", "source": "gps"}}},
	}
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir(), Fsync: buffer.FsyncOff})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	a := &App{log: slog.New(slog.DiscardHandler)}
	changes := make(chan clock.Change, len(tests))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.reportClock(ctx, changes, buf, "gw-1") }()
	for _, tc := range tests {
		changes <- tc.change
	}
	testenv.Eventually(t, "three clock events in the buffer", wait, func() bool { return buf.Next() == 4 })
	cancel()
	<-done
	c, err := buf.Read(1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Events) != len(tests) {
		t.Fatalf("events %+v", c.Events)
	}
	for i, tc := range tests {
		got := c.Events[i]
		if err := got.Validate(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		got.Time = got.Time.UTC()
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
	if n := a.clockUnwritten.Load(); n != 0 {
		t.Errorf("%d clock events unwritten", n)
	}
}
