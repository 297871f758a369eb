package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

const configTemplate = `gateway: {id: gw-reload, site: s1}
uplink: {brokers: ["%s"]}
buffer: {dir: %s, fsync: "off"}
http: {listen: "127.0.0.1:0"}
buses:
  - name: b
    type: tcp
    address: %s
    devices:
      - {id: soil-1, profile: renke/rs-ecth-n01, interval: %s}
`

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func metric(t *testing.T, base, name string) string {
	_, body := get(t, base+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

// TestReload runs the gateway in-process: a reload with a broken config is
// refused and counted while the gateway keeps running; a good one applies.
func TestReload(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	srv := sim.NewServer(nil)
	srv.AddUnit(1, &sim.SoilProbe{Env: &sim.Environment{}})
	simAddr := sim.Listen(t, srv)
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	write := func(interval string, typo bool) {
		body := fmt.Sprintf(configTemplate, mosq.URL, filepath.Join(dir, "buf"), simAddr, interval)
		if typo {
			body = strings.Replace(body, "interval:", "intervl:", 1)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1s", false)
	reload := make(chan struct{})
	addr := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: path, Log: slog.New(slog.DiscardHandler), Reload: reload,
			Listening: func(a string) { addr <- a }})
	}()
	base := "http://" + <-addr
	interval := func() string {
		code, body := get(t, base+"/status")
		if code != http.StatusOK {
			return ""
		}
		var s Status
		if err := json.Unmarshal([]byte(body), &s); err != nil || len(s.Devices) != 1 {
			return ""
		}
		return s.Devices[0].Interval
	}
	testenv.Eventually(t, "running with 1s", wait, func() bool { return interval() == "1s" })

	write("2s", true)
	reload <- struct{}{}
	testenv.Eventually(t, "refused reload counted", wait, func() bool {
		return metric(t, base, `fieldwatch_gateway_config_reloads_total{result="failure"}`) == "1"
	})
	if got := interval(); got != "1s" {
		t.Fatalf("after a refused reload the interval is %q, want the old 1s", got)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d after a refused reload", code)
	}

	write("2s", false)
	reload <- struct{}{}
	testenv.Eventually(t, "reload applied", wait, func() bool { return interval() == "2s" })
	if got := metric(t, base, `fieldwatch_gateway_config_reloads_total{result="success"}`); got != "1" {
		t.Fatalf("successful reloads = %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// wait bounds how long a test waits for an event.
const wait = 30 * time.Second
