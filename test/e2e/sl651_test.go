package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/protocols/sl651"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestSL651CentralStation runs the cloud binary as an SL 651 central
// station (embedded broker and store): a test station, written with the
// codec, connects over TCP and sends a timed report (32H) with rainfall and
// water level in HEX/BCD, then one in ASCII; each is confirmed, and
// /api/v1/latest serves the values under the configured station, which
// /api/v1/stations shows online with its name. The refused frame in between
// is counted on /metrics.
func TestSL651CentralStation(t *testing.T) {
	dir := t.TempDir()
	cloudHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	slAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := filepath.Join(dir, "cloud.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`sl651:
  listen: %q
  central: 5
  stations:
    - address: "0011223344"
      station: hydro-river-1
      site: north-river
      name: 北河水文站
      password: "03E8"
`, slAddr)), 0o600)
	start(t, "fieldwatch-cloud", "run", "-c", cfg, "-http", cloudHTTP, "-mqtt-listen", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		"-data", filepath.Join(dir, "data"))
	waitHealthy(t, cloudHTTP)

	c, err := net.DialTimeout("tcp", slAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	rd := sl651.NewReader(c)
	cst := time.FixedZone("CST", 8*3600)
	station := sl651.Address{0x00, 0x11, 0x22, 0x33, 0x44}
	obs := time.Now().In(cst).Truncate(time.Minute).Add(-time.Minute)
	send := func(enc sl651.Encoding, serial uint16, obs time.Time, z, pt float64) {
		t.Helper()
		r := sl651.Report{Serial: serial, SendTime: obs.Add(20 * time.Second),
			Items: []sl651.Item{sl651.StationItem(station, 'H', enc), sl651.TimeItem(obs, cst, enc)}}
		for _, v := range []struct {
			id uint16
			v  float64
		}{{0x26, pt}, {0x39, z}, {0x38, 12.6}} {
			it, err := sl651.NumberItem(v.id, v.v, true, enc)
			if err != nil {
				t.Fatal(err)
			}
			r.Items = append(r.Items, it)
		}
		body, err := r.Body(enc, cst)
		if err != nil {
			t.Fatal(err)
		}
		f := sl651.Frame{Encoding: enc, Center: 5, Station: station, Password: 0x03E8, Function: sl651.FnTimed,
			Start: sl651.STX, Body: body, End: sl651.ETX}
		b, err := f.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		cf, err := rd.Next()
		if err != nil || !cf.Down || cf.Function != sl651.FnTimed || cf.End != sl651.ESC || cf.Encoding != enc {
			t.Fatalf("confirmation %+v %v", cf, err)
		}
	}
	type sample struct {
		Gateway, Device, Metric, Unit string
		Value                         *float64
		Time                          time.Time
	}
	latest := func() map[string]string {
		var ss []sample
		if err := testenv.GetJSON("http://"+cloudHTTP+"/api/v1/latest?station=hydro-river-1", &ss); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, s := range ss {
			if s.Value != nil {
				out[s.Device+"/"+s.Metric] = fmt.Sprintf("%g %s @%s", *s.Value, s.Unit, s.Time.UTC().Format(time.RFC3339))
			}
		}
		return out
	}
	check := func(obs time.Time, z, pt float64) {
		t.Helper()
		at := obs.UTC().Format(time.RFC3339)
		got := latest()
		for k, v := range map[string]string{
			"0011223344/water_level":    fmt.Sprintf("%g m @%s", z, at),
			"0011223344/rainfall":       fmt.Sprintf("%g mm @%s", pt, at),
			"0011223344/supply_voltage": "12.6 V @" + at,
		} {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
	}
	// Confirmed only once stored: the API has the values now.
	send(sl651.HEX, 1, obs, 10.49, 123.4)
	check(obs, 10.49, 123.4)

	// A frame with a wrong password is refused and not answered; the ASCII
	// report after it is taken.
	bad := []byte{0x7E, 0x7E, 0x05, 0x00, 0x11, 0x22, 0x33, 0x44, 0x12, 0x34, 0x2F, 0x00, 0x08, 0x02, 0x00, 0x03,
		0x26, 0x12, 0x02, 0x10, 0x00, 0x00, 0x03}
	crc := sl651.CRC16(bad)
	c.Write(append(bad, byte(crc>>8), byte(crc)))
	send(sl651.ASCII, 2, obs.Add(time.Minute), 10.5, 123.9)
	check(obs.Add(time.Minute), 10.5, 123.9)

	var stations []struct{ ID, Name, Site, State string }
	if err := testenv.GetJSON("http://"+cloudHTTP+"/api/v1/stations", &stations); err != nil {
		t.Fatal(err)
	}
	if len(stations) != 1 || stations[0].ID != "hydro-river-1" || stations[0].Name != "北河水文站" ||
		stations[0].Site != "north-river" || stations[0].State != "online" {
		t.Errorf("stations %+v", stations)
	}
	m, err := testenv.Scrape("http://" + cloudHTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{
		`fieldwatch_sl651_frames_total{function="32"}`:    2,
		`fieldwatch_sl651_refused_total{kind="password"}`: 1,
		`fieldwatch_sl651_readings_total`:                 6,
		`fieldwatch_sl651_connections`:                    1,
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
}
