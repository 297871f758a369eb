package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/hj212test"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestHJ212Uplink runs the gateway in-process with a Modbus soil probe, a
// real Mosquitto and an HJ 212 platform on loopback: the probe's readings
// reach the platform as 2011 frames under the configured MN, and /status
// shows the uplink connected with its cursor moving.
func TestHJ212Uplink(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	srv := sim.NewServer(nil)
	srv.AddUnit(1, &sim.SoilProbe{Env: &sim.Environment{}})
	simAddr := sim.Listen(t, srv)
	plat := hj212test.Start(t, hj212test.ModeAck)
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	cfg := fmt.Sprintf(configTemplate, mosq.URL, filepath.Join(dir, "buf"), simAddr, "200ms") +
		fmt.Sprintf(`hj212_uplinks:
  - address: "%s"
    mn: MN0001
    pw: "123456"
    st: "21"
    factors: {soil_temperature: w01010, soil_moisture: e00001}
`, plat.Addr())
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	base := runGateway(t, path)
	limit := time.NewTimer(wait)
	defer limit.Stop()
	var frames []hj212.Packet
	for len(frames) < 2 {
		select {
		case f := <-plat.Frames:
			frames = append(frames, f)
		case <-limit.C:
			t.Fatalf("%d frames within %v", len(frames), wait)
		}
	}
	for _, f := range frames {
		fs := f.CP.Factors()
		if f.CN != "2011" || f.MN != "MN0001" || f.Flag != 5 || fs["w01010"]["Flag"] != "N" || fs["e00001"]["Rtd"] == "" {
			t.Fatalf("frame %+v", f)
		}
	}
	// Stop-and-wait: the second frame went out after the first was
	// confirmed, so the cursor has moved.
	code, body := get(t, base+"/status")
	var s Status
	if err := json.Unmarshal([]byte(body), &s); code != http.StatusOK || err != nil || len(s.HJ212) != 1 {
		t.Fatalf("status %d %s", code, body)
	}
	if h := s.HJ212[0]; h.Name != "hj212-MN0001" || !h.Connected || len(h.Kinds) != 1 || h.Kinds[0].Confirmed == 0 {
		t.Fatalf("hj212 status %+v", h)
	}
}

// runGateway runs the gateway on the config at path until the test ends
// (then it must stop cleanly) and returns its HTTP base URL.
func runGateway(t *testing.T, path string) string {
	t.Helper()
	addr := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: path, Log: slog.New(slog.DiscardHandler), Listening: func(a string) { addr <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case a := <-addr:
		return "http://" + a
	case err := <-done:
		t.Fatalf("gateway stopped: %v", err)
	}
	return ""
}

// TestAboveRange: the HJ 212 uplink's T comes from the device's profile: a
// bad soil moisture above the probe's range [0, 100] is above it; one
// below, a device or metric the config does not poll, is not.
func TestAboveRange(t *testing.T) {
	cfg, err := config.Load("g.yaml", []byte(fmt.Sprintf(configTemplate, "tcp://127.0.0.1:1883", t.TempDir(), "127.0.0.1:502", "1s")))
	if err != nil {
		t.Fatal(err)
	}
	above := aboveRange(cfg)
	for _, tt := range []struct {
		dev, metric string
		v           float64
		want        bool
	}{
		{"soil-1", "soil_moisture", 120.5, true},
		{"soil-1", "soil_moisture", 100, false},
		{"soil-1", "soil_temperature", -50, false},
		{"soil-2", "soil_moisture", 120.5, false},
		{"soil-1", "rain", 1e6, false},
	} {
		r := telemetry.Reading{Device: tt.dev, Metric: tt.metric, Value: tt.v, Quality: telemetry.Bad}
		if got := above(r); got != tt.want {
			t.Errorf("%s/%s %v: %v, want %v", tt.dev, tt.metric, tt.v, got, tt.want)
		}
	}
}

// TestModeOnlyFromLoopback: a device's mode, which decides the flags a
// bureau receives, is not set over the network, whatever http.listen is.
func TestModeOnlyFromLoopback(t *testing.T) {
	a := newApp(slog.New(slog.DiscardHandler))
	for remote, want := range map[string]int{"10.0.0.5:40000": http.StatusForbidden, "[2001:db8::1]:40000": http.StatusForbidden,
		"127.0.0.1:40000": http.StatusServiceUnavailable, "[::1]:40000": http.StatusServiceUnavailable} {
		req := httptest.NewRequest(http.MethodPost, "/devices/soil-1/mode", strings.NewReader(`{"mode":"maintenance"}`))
		req.RemoteAddr = remote
		w := httptest.NewRecorder()
		a.handler().ServeHTTP(w, req)
		if w.Code != want { // loopback passes the check; no gateway is running
			t.Errorf("from %s: %d, want %d", remote, w.Code, want)
		}
	}
}
