package nmea

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// t0 is the arrival time used by the tests.
var t0 = time.Date(2024, 3, 11, 16, 0, 12, 0, time.UTC)

// gpsClock is a clock quality function for the tests.
func gpsClock() telemetry.ClockQuality { return telemetry.ClockGPS }

// feedAll feeds input in one call at t0 and checks every reading and event.
func feedAll(t testing.TB, d *Decoder, input string) stream.Output {
	t.Helper()
	out := d.Feed([]byte(input), t0)
	checkOutput(t, out)
	return out
}

// checkOutput fails on a reading or event that cannot travel.
func checkOutput(t testing.TB, out stream.Output) {
	t.Helper()
	for _, r := range out.Readings {
		if err := r.Validate(); err != nil {
			t.Fatalf("invalid reading %+v: %v", r, err)
		}
	}
	for _, e := range out.Events {
		if err := e.Validate(); err != nil {
			t.Fatalf("invalid event %+v: %v", e, err)
		}
	}
}

// values returns the readings as metric → value; a metric read twice keeps
// the last.
func values(rs []telemetry.Reading) map[string]float64 {
	m := map[string]float64{}
	for _, r := range rs {
		m[r.Metric] = r.Value
	}
	return m
}

// sameValues reports the difference between two metric → value maps, with
// a tolerance of 1e-6 relative.
func sameValues(got, want map[string]float64) string {
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s (want %v)", k, w))
		} else if math.Abs(g-w) > 1e-6*math.Max(1, math.Abs(w)) {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %s = %v", k, g))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}

// errorsOf returns the error counters, never nil.
func errorsOf(s stream.Stats) map[string]uint64 {
	if s.Errors == nil {
		return map[string]uint64{}
	}
	return s.Errors
}

// withChecksum appends *hh to a sentence written without it.
func withChecksum(s string) string {
	var x byte
	for i := 1; i < len(s); i++ {
		x ^= s[i]
	}
	return fmt.Sprintf("%s*%02X", s, x)
}
