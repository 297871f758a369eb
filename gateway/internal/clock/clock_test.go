package clock

import (
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

func TestQuality(t *testing.T) {
	now := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		fixed  telemetry.ClockQuality
		now    time.Time
		synced bool
		ok     bool
		want   telemetry.ClockQuality
	}{
		{"kernel synced", telemetry.ClockUnknown, now, true, true, telemetry.ClockNTP},
		{"kernel not synced", telemetry.ClockUnknown, now, false, true, telemetry.ClockRTC},
		{"no kernel answer", telemetry.ClockUnknown, now, false, false, telemetry.ClockRTC},
		{"1970 after a cold boot", telemetry.ClockUnknown, time.Unix(100, 0), true, true, telemetry.ClockUnsynced},
		{"configured gps", telemetry.ClockGPS, now, false, true, telemetry.ClockGPS},
		{"configured but 1970", telemetry.ClockGPS, time.Unix(100, 0), false, true, telemetry.ClockUnsynced},
	}
	for _, tc := range tests {
		s := New(tc.fixed, nil)
		s.now = func() time.Time { return tc.now }
		s.sync = func() (bool, bool) { return tc.synced, tc.ok }
		if got := s.Quality(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
