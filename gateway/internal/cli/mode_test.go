package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/app"
	"github.com/fieldwatch/fieldwatch/test/hj212test"
	"github.com/fieldwatch/fieldwatch/test/sim"
)

// TestModeByHand runs a gateway in-process with a Modbus soil probe and an
// HJ 212 platform on loopback (no broker: the MQTT uplink only buffers),
// and puts the probe in maintenance with `fieldwatch-gateway mode`: the
// platform's real-time frames turn from N to M for its factors, and back
// to N once it is put back to normal. Unknown devices and modes are
// refused.
func TestModeByHand(t *testing.T) {
	srv := sim.NewServer(nil)
	srv.AddUnit(1, &sim.SoilProbe{Env: &sim.Environment{}})
	simAddr := sim.Listen(t, srv)
	plat := hj212test.Start(t, hj212test.ModeAck)
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	cfg := fmt.Sprintf(`gateway: {id: gw-mode, site: s1}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
buffer: {dir: %s, fsync: "off"}
http: {listen: "127.0.0.1:0"}
buses:
  - name: b
    type: tcp
    address: %s
    devices:
      - {id: soil-1, profile: renke/rs-ecth-n01, interval: 200ms}
hj212_uplinks:
  - address: "%s"
    mn: MN0001
    pw: "123456"
    st: "21"
    factors: {soil_temperature: w01010}
`, filepath.Join(dir, "buf"), simAddr, plat.Addr())
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{ConfigPath: path, Log: slog.New(slog.DiscardHandler), Listening: func(a string) { addr <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	var base string
	select {
	case base = <-addr:
	case err := <-done:
		t.Fatalf("gateway stopped: %v", err)
	}
	// flagUntil waits for a frame whose w01010 has flag want.
	flagUntil := func(want string) {
		t.Helper()
		limit := time.After(20 * time.Second)
		for {
			select {
			case f := <-plat.Frames:
				if f.CP.Factors()["w01010"]["Flag"] == want {
					return
				}
			case <-limit:
				t.Fatalf("no frame with w01010-Flag=%s", want)
			}
		}
	}
	mode := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), append([]string{"mode", "-addr", base, "-by", "zhang"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	flagUntil("N")
	if code, out, errOut := mode("soil-1", "maintenance"); code != ExitOK || !strings.Contains(out, "soil-1 is in maintenance mode") {
		t.Fatalf("mode: %d %q %q", code, out, errOut)
	}
	flagUntil("M")
	if code, _, errOut := mode("soil-1", "normal"); code != ExitOK {
		t.Fatalf("mode normal: %d %q", code, errOut)
	}
	flagUntil("N")
	if code, _, errOut := mode("soil-9", "maintenance"); code != ExitFail || !strings.Contains(errOut, `no device "soil-9"`) {
		t.Errorf("unknown device: %d %q", code, errOut)
	}
	if code, _, _ := mode("soil-1", "dancing"); code != ExitUsage {
		t.Errorf("unknown mode: %d", code)
	}
	// The endpoint itself refuses a mode it does not know.
	resp, err := http.Post("http://"+base+"/devices/soil-1/mode", "application/json", strings.NewReader(`{"mode":"manual"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("mode manual: %s", resp.Status)
	}
}

func TestLoopback(t *testing.T) {
	for in, want := range map[string]string{":9101": "127.0.0.1:9101", "0.0.0.0:9101": "127.0.0.1:9101",
		"[::]:9101": "127.0.0.1:9101", "127.0.0.1:9101": "127.0.0.1:9101", "10.0.0.5:9101": "10.0.0.5:9101"} {
		if got := loopback(in); got != want {
			t.Errorf("loopback(%q) = %q, want %q", in, got, want)
		}
	}
}
