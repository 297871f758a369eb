package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/sim"
)

// A farm's 20 stations on one Modbus line: 10 Renke soil probes (units
// 1–10: moisture, temperature, EC) and 10 Renke air sensors (units 11–20:
// humidity, temperature), 50 series. The backlog and the live simulator
// use the same ids, units and environment, so live data continues the
// backlog as it would after an outage.
const (
	soilProbes = 10
	airSensors = 10
	farmSeries = soilProbes*3 + airSensors*2
)

func stationID(unit int) string {
	if unit <= soilProbes {
		return fmt.Sprintf("soil-%02d", unit)
	}
	return fmt.Sprintf("air-%02d", unit-soilProbes)
}

// farmUnits are the simulator's devices for the stations.
func farmUnits(env *sim.Environment) map[uint8]sim.Device {
	units := map[uint8]sim.Device{}
	for u := 1; u <= soilProbes+airSensors; u++ {
		if u <= soilProbes {
			units[uint8(u)] = &sim.SoilProbe{Env: env, Probe: u - 1}
		} else {
			units[uint8(u)] = &sim.AirSensor{Env: env}
		}
	}
	return units
}

// farmDevices is the gateway config's device list for the stations.
func farmDevices(interval time.Duration) string {
	var sb strings.Builder
	for u := 1; u <= soilProbes+airSensors; u++ {
		profile := "renke/rs-ecth-n01"
		if u > soilProbes {
			profile = "renke/rs-ws-n01-8"
		}
		fmt.Fprintf(&sb, "      - {id: %s, profile: %s, unit: %d, interval: %s}\n", stationID(u), profile, u, interval)
	}
	return sb.String()
}

// poll is what the gateway's poller appends for one read of unit at t: the
// profile's metrics and units, values as the registers carry them (tenths;
// EC in whole µS/cm), one time for the whole poll, clock NTP.
func poll(env *sim.Environment, unit int, t time.Time) []telemetry.Reading {
	dev := stationID(unit)
	r := func(metric, u string, v float64, per float64) telemetry.Reading { // per: 10 for tenths
		return telemetry.Reading{Device: dev, Metric: metric, Unit: u, Value: math.Round(v*per) / per, Time: t,
			Quality: telemetry.Good, Clock: telemetry.ClockNTP}
	}
	if unit <= soilProbes {
		p := unit - 1
		return []telemetry.Reading{r("soil_moisture", "%", env.SoilMoisture(t, p), 10),
			r("soil_temperature", "°C", env.SoilTemperature(t, p), 10), r("soil_ec", "µS/cm", env.SoilEC(t, p), 1)}
	}
	return []telemetry.Reading{r("air_humidity", "%", env.AirHumidity(t), 10),
		r("air_temperature", "°C", env.AirTemperature(t), 10)}
}

// writeBacklog writes n readings as JSON lines, one poll a line, oldest
// first: every station polled once a minute, the minutes ending before
// end (n = 1 000 000 is 20 000 minutes, about two weeks). Within a cycle
// the stations are read one after another, 25 ms apart, each poll a few
// milliseconds late at random: nanosecond times as time.Now gives them.
func writeBacklog(w io.Writer, n int, end time.Time, seed uint64) error {
	env := &sim.Environment{Seed: int64(seed)}
	rng := rand.New(rand.NewPCG(seed, 1))
	minutes := (n + farmSeries - 1) / farmSeries
	start := end.Truncate(time.Minute).Add(-time.Duration(minutes) * time.Minute)
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	left := n
	for m := 0; m < minutes && left > 0; m++ {
		cycle := start.Add(time.Duration(m) * time.Minute)
		for u := 1; u <= soilProbes+airSensors && left > 0; u++ {
			t := cycle.Add(time.Duration(u-1)*25*time.Millisecond + time.Duration(rng.Int64N(int64(4*time.Millisecond))))
			rs := poll(env, u, t.UTC())
			rs = rs[:min(len(rs), left)]
			left -= len(rs)
			if err := enc.Encode(rs); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// fillBuffer lays down an n-reading backlog ending before end in dir with
// the bufferfill tool (bin), as a gateway that could not reach the cloud
// would have left it.
func fillBuffer(b *testing.B, bin, dir string, n int, end time.Time) {
	b.Helper()
	cmd := exec.Command(bin, "-dir", dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	werr := writeBacklog(stdin, n, end, 42)
	stdin.Close()
	if err := cmd.Wait(); err != nil || werr != nil {
		b.Fatalf("bufferfill: %v %v\n%s", err, werr, out.String())
	}
	b.Logf("bufferfill: %s", strings.TrimSpace(out.String()))
	if _, err := os.Stat(dir + "/stream"); err != nil {
		b.Fatal(err)
	}
}
