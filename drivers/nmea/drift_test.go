package nmea

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

func TestHaversine(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want, tol              float64
	}{
		{"same point", 60.08, 23.53, 60.08, 23.53, 0, 1e-9},
		{"one degree of latitude", 0, 0, 1, 0, 111195.08, 0.01},
		{"one degree of longitude at 60°N", 60, 10, 60, 11, 55597.5, 1},
		{"across the antimeridian", 0, 179.9, 0, -179.9, 22239.0, 0.1},
		{"pole to pole", 90, 0, -90, 0, math.Pi * earthRadius, 1e-3},
	}
	for _, tt := range tests {
		if got := Haversine(tt.lat1, tt.lon1, tt.lat2, tt.lon2); math.Abs(got-tt.want) > tt.tol {
			t.Errorf("%s: %v m, want %v", tt.name, got, tt.want)
		}
	}
}

// north returns the point d metres north of (lat, lon).
func north(lat, lon, d float64) (float64, float64) {
	return lat + d/earthRadius*180/math.Pi, lon
}

// TestDriftHysteresis walks a buoy out of its circle, jitters around the
// boundary, and brings it back: one event out, one back, nothing between.
func TestDriftHysteresis(t *testing.T) {
	m := Mooring{Lat: 60.08, Lon: 23.53, RadiusM: 100}
	steps := []struct {
		dist  float64 // metres from the anchor
		event string  // state of the expected event, "" for none
	}{
		{0, ""}, {50, ""}, {99, ""}, {101, StateDrifting}, {120, ""},
		{95, ""}, {105, ""}, {91, ""}, {99.9, ""}, {100.1, ""}, // jitter at the boundary: still drifting
		{89, StateReturned}, {95, ""}, {99, ""}, {100, ""}, {100.5, StateDrifting}, {5, StateReturned},
	}
	dr := NewDrift(m)
	at := t0
	for i, s := range steps {
		at = at.Add(time.Second)
		lat, lon := north(m.Lat, m.Lon, s.dist)
		ev, ok := dr.Update(lat, lon, at)
		got := ""
		if ok {
			got = ev.Attrs["state"]
			ev.Device, ev.Clock = "buoy1", telemetry.ClockGPS
			if err := ev.Validate(); err != nil {
				t.Fatal(err)
			}
			if ev.Kind != telemetry.EventDrift || ev.Key != "" || !ev.Time.Equal(at) ||
				math.Abs(ev.Values["distance_m"]-s.dist) > 0.1 || ev.Values["radius_m"] != 100 ||
				ev.Values["lat"] != lat || ev.Values["lon"] != lon ||
				ev.Values["anchor_lat"] != m.Lat || ev.Values["anchor_lon"] != m.Lon {
				t.Errorf("step %d: event %+v", i, ev)
			}
		}
		if got != s.event {
			t.Fatalf("step %d at %v m: event %q, want %q", i, s.dist, got, s.event)
		}
	}
}

// TestDriftConfirm ignores a single wild fix when two in a row are needed.
func TestDriftConfirm(t *testing.T) {
	m := Mooring{Lat: -33.85, Lon: 151.2, RadiusM: 50, Confirm: 2}
	dr := NewDrift(m)
	var states []string
	for _, d := range []float64{10, 500, 10, 60, 70, 80, 10, 48, 10, 10} {
		lat, lon := north(m.Lat, m.Lon, d)
		if ev, ok := dr.Update(lat, lon, t0); ok {
			states = append(states, fmt.Sprintf("%s@%v", ev.Attrs["state"], d))
		}
	}
	if fmt.Sprint(states) != "[drifting@70 returned@10]" {
		t.Fatalf("events %v", states)
	}
}

func TestMooringCheck(t *testing.T) {
	tests := []struct {
		m    Mooring
		keys []string
	}{
		{Mooring{Lat: 60, Lon: 23, RadiusM: 100}, nil},
		{Mooring{Lat: 91, Lon: 181, RadiusM: 0, ReturnFraction: 1.5, Confirm: -1}, []string{"lat", "lon", "radius_m", "return_fraction", "confirm"}},
		{Mooring{Lat: math.NaN(), Lon: 0, RadiusM: math.Inf(1)}, []string{"lat", "radius_m"}},
	}
	for i, tt := range tests {
		tt.m.Normalize()
		bad := tt.m.Check()
		if len(bad) != len(tt.keys) {
			t.Errorf("case %d: %v, want keys %v", i, bad, tt.keys)
		}
		for _, k := range tt.keys {
			if bad[k] == "" {
				t.Errorf("case %d: no message for %s in %v", i, k, bad)
			}
		}
	}
}

// rmcAt returns an RMC sentence with a valid fix at lat, lon.
func rmcAt(lat, lon float64) string {
	ns, ew := "N", "E"
	if lat < 0 {
		ns, lat = "S", -lat
	}
	if lon < 0 {
		ew, lon = "W", -lon
	}
	dm := func(v float64, w int) string {
		deg := math.Floor(v)
		return fmt.Sprintf("%0*d%07.4f", w, int(deg), (v-deg)*60)
	}
	return withChecksum(fmt.Sprintf("$GPRMC,120000,A,%s,%s,%s,%s,0.5,90.0,110324,,,A", dm(lat, 2), ns, dm(lon, 3), ew))
}

// TestDecoderMooring follows a buoy through the decoder: positions, one
// drifting event, one returned event, and estimated fixes ignored.
func TestDecoderMooring(t *testing.T) {
	m := Mooring{Lat: 60.08, Lon: -23.53, RadiusM: 200}
	d := New(Config{}, "buoy7", gpsClock).WithMooring(m)
	if _, _, _, ok := d.Position(); ok {
		t.Fatal("position before any fix")
	}
	var events []string
	for i, dist := range []float64{0, 100, 250, 300, 190, 150, 10} {
		lat, lon := north(m.Lat, m.Lon, dist)
		at := t0.Add(time.Duration(i) * time.Second)
		out := d.Feed([]byte(rmcAt(lat, lon)+"\r\n"), at)
		checkOutput(t, out)
		for _, e := range out.Events {
			if e.Device != "buoy7" || e.Clock != telemetry.ClockGPS {
				t.Fatalf("event %+v", e)
			}
			events = append(events, fmt.Sprintf("%s@%v", e.Attrs["state"], dist))
		}
		plat, plon, pat, ok := d.Position()
		if !ok || math.Abs(plat-lat) > 1e-6 || math.Abs(plon-lon) > 1e-6 || !pat.Equal(at) {
			t.Fatalf("position %v %v %v %v, want %v %v %v", plat, plon, pat, ok, lat, lon, at)
		}
	}
	if fmt.Sprint(events) != "[drifting@250 returned@150]" {
		t.Fatalf("events %v", events)
	}
	// A dead-reckoning GGA far away moves the position but not the watch.
	out := feedAll(t, d, "$GPGGA,123519,4807.038,N,01131.000,E,6,08,0.9,545.4,M,46.9,M,,*40\r\n")
	if len(out.Events) != 0 {
		t.Fatalf("estimated fix raised %v", out.Events)
	}
	if lat, _, _, _ := d.Position(); math.Abs(lat-48.1173) > 1e-6 {
		t.Fatalf("position not updated by the estimated fix: %v", lat)
	}
	// An invalid RMC does not move it.
	feedAll(t, d, "$GPRMC,,V,,,,,,,,,,N*53\r\n")
	if lat, _, _, _ := d.Position(); math.Abs(lat-48.1173) > 1e-6 {
		t.Fatalf("position moved by an invalid fix: %v", lat)
	}
}

// TestOneFixOnePosition: a receiver's GGA and RMC of one fix (same UTC,
// same position) give one latitude and longitude and one step of the
// mooring watch; the next second's fix gives the next.
func TestOneFixOnePosition(t *testing.T) {
	d := New(Config{}, "buoy", gpsClock).WithMooring(Mooring{Lat: 60, Lon: 23, RadiusM: 100, Confirm: 2})
	out := feedAll(t, d, "$GPGGA,120000,6005.0710,N,02332.3460,E,1,09,0.9,2.1,M,17.9,M,,*49\r\n"+
		"$GPRMC,120000,A,6005.0710,N,02332.3460,E,0.4,90.0,211126,,,A*4D\r\n")
	count := func(out stream.Output) (n int) {
		for _, r := range out.Readings {
			if r.Metric == MetricLatitude {
				n++
			}
		}
		return n
	}
	if n := count(out); n != 1 || len(out.Events) != 0 {
		t.Fatalf("one fix gave %d latitudes and events %+v; want 1 and none (confirm 2 needs two fixes)", n, out.Events)
	}
	if st := d.Stats(); st.Frames != 2 {
		t.Fatalf("frames %d; the RMC still counts (speed, course)", st.Frames)
	}
	out = feedAll(t, d, "$GPRMC,120001,A,6005.0712,N,02332.3460,E,0.4,90.0,211126,,,A*4E\r\n")
	if n := count(out); n != 1 || len(out.Events) != 1 {
		t.Fatalf("the next fix gave %d latitudes and %d events; want 1 and the drift confirmed", n, len(out.Events))
	}
}
