package interop

import (
	"context"
	"encoding/json"
	"fmt"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestPeerLoggerToOurPlatform: the independent peer, as a data logger,
// reports to the real fieldwatch-cloud binary's HJ 212 listener; every
// upload is answered (9014, the same QN) at the first try, and the values
// appear in /api/v1/latest under the configured station with the metrics,
// units, times (Beijing time read as such) and qualities (data flags) of
// docs/standards/hj212.md.
func TestPeerLoggerToOurPlatform(t *testing.T) {
	script := peerPath(t)
	hjAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	httpAddr := startCloud(t, fmt.Sprintf("hj212:\n  listen: %q\n  loggers:\n    - {mn: %s, pw: %q, station: outfall-3}\n", hjAddr, mn, pw))

	frames := filepath.Join(t.TempDir(), "frames.json")
	data, _ := json.Marshal(uploads)
	os.WriteFile(frames, data, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(uploads))*wait)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, script, "logger", "--connect", hjAddr,
		"--mn", mn, "--pw", pw, "--frames", frames, "--overtime", "20", "--recount", "0").CombinedOutput()
	if err != nil {
		t.Fatalf("peer logger: %v\n%s", err, out)
	}
	answeredFirstTry(t, out)

	// Answered means stored: no waiting from here.
	var latest []struct {
		Device, Metric, Unit, Quality string
		Value                         *float64
		Time                          time.Time
	}
	if err := testenv.GetJSON("http://"+httpAddr+"/api/v1/latest?station=outfall-3", &latest); err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time { tm, _ := hj212.ParseTime(s, hj212.Beijing); return tm }
	type want struct {
		v       float64
		unit, q string
		t       time.Time
	}
	wants := map[string]want{
		"water_ph":                   {7.19, "", "good", at("20261202083100")},
		"dissolved_oxygen":           {2.80, "mg/L", "bad", at("20261202083100")},  // flag C, calibrating
		"ammonia_nitrogen":           {0.412, "mg/L", "bad", at("20261202083000")}, // flag D, fault
		"cod_minute_avg":             {22.4, "mg/L", "good", at("20261202083000")},
		"cod_minute_min":             {21.0, "mg/L", "good", at("20261202083000")},
		"cod_minute_max":             {23.9, "mg/L", "good", at("20261202083000")},
		"wastewater_flow_minute_cou": {12.5, "m³", "good", at("20261202083000")},
	}
	for _, s := range latest {
		w, ok := wants[s.Metric]
		if !ok {
			t.Errorf("unexpected series %+v", s)
			continue
		}
		if s.Device != mn || s.Value == nil || *s.Value != w.v || s.Unit != w.unit || s.Quality != w.q || !s.Time.Equal(w.t) {
			t.Errorf("%s: %+v (value %v), want %v %q %s at %v", s.Metric, s, s.Value, w.v, w.unit, w.q, w.t.UTC())
		}
		delete(wants, s.Metric)
	}
	if len(wants) > 0 {
		t.Errorf("missing from /api/v1/latest: %v", wants)
	}
}

// answeredFirstTry checks the peer logger's output: one line per upload,
// each answered at the first try.
func answeredFirstTry(t *testing.T, out []byte) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(uploads) {
		t.Fatalf("peer logger printed %d lines for %d uploads:\n%s", len(lines), len(uploads), out)
	}
	for i, l := range lines {
		var r struct {
			QN    string `json:"qn"`
			Acked bool   `json:"acked"`
			Tries int    `json:"tries"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || !r.Acked || r.Tries != 1 {
			t.Errorf("upload %d: the peer says %s (%v): want answered at the first try", i, l, err)
		}
	}
}

// TestPeerLoggerHistoryAfterOutage: the peer logger reports minute data
// every 10 minutes to the real cloud, goes away for half an hour (keeping
// its data, as a logger does), and comes back with the newest period; the
// cloud asks for the gap (CN 2051 with BeginTime and EndTime), the peer
// answers with the three kept periods, and the store then holds every
// period once — nothing lost, nothing doubled.
func TestPeerLoggerHistoryAfterOutage(t *testing.T) {
	script := peerPath(t)
	hjAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	httpAddr := startCloud(t, fmt.Sprintf("hj212:\n  listen: %q\n  loggers:\n    - {mn: %s, pw: %q, station: outfall-3}\n", hjAddr, mn, pw))

	t0 := time.Now().In(hj212.Beijing).Truncate(10 * time.Minute).Add(-time.Hour)
	minute := func(k int) upload {
		return upload{CN: hj212.CNMinute, DataTime: hj212.FormatTime(t0.Add(time.Duration(k)*10*time.Minute), hj212.Beijing),
			Values: map[string]map[string]string{"w01009": {"Avg": fmt.Sprintf("%d.5", 5+k), "Min": "4.0", "Max": "9.0", "Flag": "N"}}}
	}
	write := func(name string, us ...upload) string {
		path := filepath.Join(t.TempDir(), name)
		data, _ := json.Marshal(us)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	run := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 4*wait)
		defer cancel()
		out, err := exec.CommandContext(ctx, python, append([]string{script, "logger", "--connect", hjAddr, "--mn", mn, "--pw", pw,
			"--overtime", "20", "--recount", "0"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("peer logger: %v\n%s", err, out)
		}
		return out
	}
	// Before the outage: periods 0 and 1 (the cloud learns the step).
	run("--frames", write("before.json", minute(0), minute(1)))
	// After it: period 5 live; 2, 3 and 4 kept through the outage.
	out := run("--frames", write("after.json", minute(5)), "--history", write("kept.json", minute(2), minute(3), minute(4)), "--linger", "20")
	var served struct {
		Request string `json:"request"`
		Begin   string `json:"begin"`
		End     string `json:"end"`
		Sent    int    `json:"sent"`
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &served) != nil || served.Request != hj212.CNMinute || served.Sent != 3 {
		t.Fatalf("the peer did not serve the gap as asked:\n%s", out)
	}
	if b, e := minute(1).DataTime, minute(5).DataTime; served.Begin <= b || served.End >= e {
		t.Errorf("the cloud asked for %s–%s, the gap is after %s and before %s", served.Begin, served.End, b, e)
	}

	// Answered means stored: each period once.
	var series struct {
		Samples []struct {
			Time  time.Time `json:"time"`
			Value *float64  `json:"value"`
		} `json:"samples"`
	}
	q := neturl.Values{"station": {"outfall-3"}, "device": {mn}, "metric": {"dissolved_oxygen_minute_avg"},
		"from": {t0.Add(-time.Minute).Format(time.RFC3339)}, "to": {t0.Add(time.Hour).Format(time.RFC3339)}}
	if err := testenv.GetJSON("http://"+httpAddr+"/api/v1/series?"+q.Encode(), &series); err != nil {
		t.Fatal(err)
	}
	if len(series.Samples) != 6 {
		t.Fatalf("the store has %d minute periods, want 6 (0–5, each once): %+v", len(series.Samples), series.Samples)
	}
	for k, s := range series.Samples {
		if !s.Time.Equal(t0.Add(time.Duration(k)*10*time.Minute)) || s.Value == nil || *s.Value != float64(5+k)+0.5 {
			t.Errorf("period %d: %+v", k, s)
		}
	}
}
