package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestHJ212Platform runs the cloud binary with an hj212 listener: a data
// logger written with the codec reports real-time water-quality data, each
// frame is answered with 9014 once stored, the values appear in
// /api/v1/latest under the configured station with their units and data
// flags as quality, and a frame with a wrong password is refused, counted
// and not answered while the next good one still is.
func TestHJ212Platform(t *testing.T) {
	dir := t.TempDir()
	const mn = "010000A8900016F000169DC0"
	pwFile := filepath.Join(dir, "logger.pw")
	os.WriteFile(pwFile, []byte("123456\n"), 0o600)
	hjAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cloudHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := filepath.Join(dir, "cloud.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`hj212:
  listen: "%s"
  factors:
    w01003: {metric: turbidity, unit: NTU}
  loggers:
    - mn: %s
      pw_file: %s
      station: river-east
      site: huai-river
      name: 淮河东断面
      location: {lat: 32.95, lon: 117.39}
      device: sonde
`, hjAddr, mn, pwFile)), 0o600)
	cloud := start(t, "fieldwatch-cloud", "run", "-c", cfg, "-http", cloudHTTP, "-data", t.TempDir(),
		"-mqtt-listen", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)))
	waitHealthy(t, cloudHTTP) // the HJ 212 listener is up before the HTTP server

	c, err := net.DialTimeout("tcp", hjAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd := hj212.NewReader(c)
	now := time.Now().Truncate(time.Second)
	send := func(qn, pw string, items ...hj212.Item) {
		t.Helper()
		p := hj212.Packet{QN: qn, ST: hj212.STSurfaceWater, CN: hj212.CNRealtime, PW: pw, MN: mn,
			Flag: hj212.MakeFlag(hj212.Version2017, false, true),
			CP:   append(hj212.CP{{{Name: "DataTime", Value: hj212.FormatTime(now, hj212.Beijing)}}}, items...)}
		f, err := p.Frame()
		if err != nil {
			t.Fatal(err)
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	answered := func(qn string) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		data, err := rd.Next()
		if err != nil {
			t.Fatalf("no answer to %s: %v", qn, err)
		}
		a, err := hj212.DecodePacket(data)
		if err != nil || a.CN != hj212.CNDataResponse || a.QN != qn || a.ST != hj212.STSystem {
			t.Fatalf("answer %q (%v), want 9014 to %s", data, err, qn)
		}
	}
	qn := hj212.QN(now, hj212.Beijing)
	send("20200101000000000", "654321", hj212.FactorItem("w01001", "Rtd", "9.9")) // wrong PW: refused, not answered
	send(qn, "123456",
		hj212.FactorItem("w01001", "Rtd", "7.12", "Flag", "N"),
		hj212.FactorItem("w01009", "Rtd", "6.8", "Flag", "N"),
		hj212.FactorItem("w21003", "Rtd", "0.42", "Flag", "C"),
		hj212.FactorItem("w01003", "Rtd", "13.10", "Flag", "N"))
	answered(qn)

	var latest []struct {
		Gateway, Site, Device, Metric, Unit, Quality string
		Value                                        *float64
		Time                                         time.Time
	}
	if err := testenv.GetJSON("http://"+cloudHTTP+"/api/v1/latest?station=river-east", &latest); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		v       float64
		unit, q string
	}{
		"water_ph": {7.12, "", "good"}, "dissolved_oxygen": {6.8, "mg/L", "good"},
		"ammonia_nitrogen": {0.42, "mg/L", "bad"}, "turbidity": {13.1, "NTU", "good"},
	}
	for _, s := range latest {
		w, ok := want[s.Metric]
		if !ok {
			t.Errorf("unexpected series %+v", s)
			continue
		}
		if s.Device != "sonde" || s.Site != "huai-river" || s.Value == nil || *s.Value != w.v || s.Unit != w.unit ||
			s.Quality != w.q || !s.Time.Equal(now) {
			t.Errorf("%s: %+v (value %v), want %v %q %s at %v", s.Metric, s, s.Value, w.v, w.unit, w.q, now.UTC())
		}
		delete(want, s.Metric)
	}
	if len(want) > 0 {
		t.Errorf("missing from /api/v1/latest: %v", want)
	}
	var station struct {
		State, Name string
		Location    *struct{ Lat, Lon float64 }
	}
	if err := testenv.GetJSON("http://"+cloudHTTP+"/api/v1/stations/river-east", &station); err != nil {
		t.Fatal(err)
	}
	if station.State != "online" || station.Name != "淮河东断面" || station.Location == nil || station.Location.Lat != 32.95 {
		t.Errorf("station %+v, want online with its name and location while its logger is connected", station)
	}
	m, err := testenv.Scrape("http://" + cloudHTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for series, v := range map[string]float64{
		`fieldwatch_hj212_refused_total{kind="wrong_pw"}`: 1,
		`fieldwatch_hj212_frames_total{class="realtime"}`: 1,
		`fieldwatch_hj212_readings_total`:                 4,
		`fieldwatch_hj212_answers_total{cn="9014"}`:       1,
		`fieldwatch_hj212_connections`:                    1,
	} {
		if m[series] != v {
			t.Errorf("%s = %v, want %v", series, m[series], v)
		}
	}
	cloud.Stop(t, syscall.SIGTERM)
	if code := cloud.ExitCode(); code != 0 {
		t.Fatalf("cloud exited with %d on SIGTERM", code)
	}
}
