package sim

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/nmea"
	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// feedBuoy decodes n bursts of b, one per second from start, in random
// read sizes as a serial port delivers them.
func feedBuoy(t *testing.T, b *BuoyStream, d *nmea.Decoder, start time.Time, n int) stream.Output {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	var all stream.Output
	for i := range n {
		now := start.Add(time.Duration(i) * time.Second)
		burst := b.Next(now)
		for len(burst) > 0 {
			k := min(len(burst), 1+rng.IntN(64))
			out := d.Feed(burst[:k], now)
			burst = burst[k:]
			for _, r := range out.Readings {
				if err := r.Validate(); err != nil {
					t.Fatal(err)
				}
			}
			for _, e := range out.Events {
				if err := e.Validate(); err != nil {
					t.Fatal(err)
				}
			}
			all.Add(out)
		}
	}
	return all
}

// TestBuoyStreamFaults decodes a faulty buoy stream: every intact sentence
// is decoded and every injected fault is counted under its kind.
func TestBuoyStreamFaults(t *testing.T) {
	for _, met := range []string{"MDA", "XDR"} {
		t.Run(met, func(t *testing.T) {
			b := &BuoyStream{Env: Environment{Seed: 3}, Lat: 60.08, Lon: 23.53, Met: met, Waves: true, Seed: 42,
				Faults: BuoyFaults{Garbage: 0.02, Binary: 0.02, BadChecksum: 0.02, Overlong: 0.01}}
			d := nmea.New(nmea.Config{}, "buoy1", func() telemetry.ClockQuality { return telemetry.ClockNTP })
			start := time.Date(2026, 10, 3, 9, 0, 0, 0, time.UTC)
			out := feedBuoy(t, b, d, start, 600)
			c, st := b.Counts, d.Stats()
			if c.Garbage == 0 || c.Binary == 0 || c.BadChecksum == 0 || c.Overlong == 0 || c.Waves < 50 {
				t.Fatalf("faults not all injected: %+v", c)
			}
			want := map[string]uint64{
				nmea.KindGarbage:  uint64(c.Garbage),
				nmea.KindBinary:   uint64(c.Binary),
				nmea.KindChecksum: uint64(c.BadChecksum),
				nmea.KindOverlong: uint64(c.Overlong),
			}
			if st.Frames != uint64(c.Sentences) || len(st.Errors) != len(want) {
				t.Fatalf("decoded %d frames, errors %v; sent %+v", st.Frames, st.Errors, c)
			}
			for k, v := range want {
				if st.Errors[k] != v {
					t.Errorf("%s: counted %d, injected %d", k, st.Errors[k], v)
				}
			}
			// The values are the model's.
			last := map[string]telemetry.Reading{}
			for _, r := range out.Readings {
				last[r.Metric] = r
			}
			at := last["water_temperature"].Time
			wt, _ := b.Env.Plausible("water_temperature", "°C", 0, at)
			air := b.Env.AirTemperature(last["air_temperature"].Time)
			lat, lon, _, ok := d.Position()
			if math.Abs(last["water_temperature"].Value-wt) > 0.051 || math.Abs(last["air_temperature"].Value-air) > 0.051 ||
				!ok || nmea.Haversine(lat, lon, 60.08, 23.53) > 10 || last["air_pressure"].Value < 950 {
				t.Fatalf("values: %+v, model water %v air %v, position %v %v", last, wt, air, lat, lon)
			}
			for _, m := range []string{"wind_speed", "wind_direction", "wind_speed_relative", "air_humidity", "dew_point",
				"latitude", "longitude", "gps_quality", "clock_offset", "wave_height", "wave_period_peak"} {
				if _, ok := last[m]; !ok {
					t.Errorf("no %s reading", m)
				}
			}
			if len(out.Events) != 0 {
				t.Fatalf("a buoy at its mooring raised %v", out.Events)
			}
		})
	}
}

// TestBuoyStreamDrift drags the buoy 300 m east and back: one drifting and
// one returned event, despite the GPS jitter at the boundary.
func TestBuoyStreamDrift(t *testing.T) {
	start := time.Date(2026, 10, 3, 9, 0, 0, 0, time.UTC)
	b := &BuoyStream{Env: Environment{Seed: 1}, Lat: -33.85, Lon: 151.25, Seed: 9,
		Drift: func(at time.Time) (float64, float64) {
			s := at.Sub(start).Seconds() // out at 1 m/s for 300 s, then back
			return 0, math.Max(0, 300-math.Abs(s-300))
		}}
	d := nmea.New(nmea.Config{}, "buoy2", nil).WithMooring(nmea.Mooring{Lat: -33.85, Lon: 151.25, RadiusM: 150})
	out := feedBuoy(t, b, d, start, 700)
	if len(out.Events) != 2 || out.Events[0].Attrs["state"] != nmea.StateDrifting || out.Events[1].Attrs["state"] != nmea.StateReturned {
		t.Fatalf("events %+v", out.Events)
	}
	out1, out2 := out.Events[0], out.Events[1]
	if s := out1.Time.Sub(start).Seconds(); s < 145 || s > 156 || out1.Values["distance_m"] < 150 {
		t.Errorf("drifting at %v s, %v m", s, out1.Values["distance_m"])
	}
	if s := out2.Time.Sub(start).Seconds(); s < 460 || s > 470 || out2.Values["distance_m"] > 135 {
		t.Errorf("returned at %v s, %v m", s, out2.Values["distance_m"])
	}
}

func TestLineTime(t *testing.T) {
	b := &BuoyStream{Env: Environment{Seed: 1}, Lat: 60, Lon: 23, Waves: true}
	n := len(b.Next(time.Date(2026, 10, 3, 9, 0, 0, 0, time.UTC)))
	if LineTime(n, 9600) > time.Second || LineTime(n, 4800) > 2*time.Second || LineTime(960, 9600) != time.Second {
		t.Fatalf("a %d-byte burst takes %v at 9600 baud", n, LineTime(n, 9600))
	}
}
