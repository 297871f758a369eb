package interop

import (
	"context"
	"encoding/json"
	"fmt"
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
	bins := t.TempDir()
	if err := testenv.Build("../..", bins, "./cloud/cmd/fieldwatch-cloud"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hjAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := filepath.Join(dir, "cloud.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("hj212:\n  listen: %q\n  loggers:\n    - {mn: %s, pw: %q, station: outfall-3}\n",
		hjAddr, mn, pw)), 0o600)
	cloud := testenv.StartBinary(t, filepath.Join(bins, "fieldwatch-cloud"), "run", "-c", cfg, "-http", httpAddr,
		"-data", t.TempDir(), "-mqtt-listen", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)))
	testenv.Eventually(t, "the cloud serving", wait, func() bool {
		if cloud.Exited() {
			t.Fatalf("the cloud exited:\n%s", cloud.Logs())
		}
		var v any
		return testenv.GetJSON("http://"+httpAddr+"/api/v1/stations", &v) == nil // the HJ 212 listener starts first
	})

	frames := filepath.Join(t.TempDir(), "frames.json")
	data, _ := json.Marshal(uploads)
	os.WriteFile(frames, data, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(uploads))*wait)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, script, "logger", "--connect", hjAddr,
		"--mn", mn, "--pw", pw, "--frames", frames, "--overtime", "20", "--recount", "0").CombinedOutput()
	if err != nil {
		t.Fatalf("peer logger: %v\n%s\ncloud:\n%s", err, out, cloud.Logs())
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
