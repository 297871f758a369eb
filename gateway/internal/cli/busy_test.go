package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/app"
	"github.com/fieldwatch/fieldwatch/gateway/internal/portlock"
	"github.com/fieldwatch/fieldwatch/test/sim"
)

// TestMain points the commands at a runtime directory of their own, so
// that no gateway running on this machine can own the tests' ports.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fieldwatch-run-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(portlock.DirEnv, dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const busyConfig = `gateway: {id: farm}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
buffer: {dir: %[1]s, fsync: "off"}
http: {listen: "127.0.0.1:0"}
buses:
  - name: rs485
    type: rtu
    port: %[2]s
    baud: 4800
    devices:
      - {id: soil, profile: renke/rs-ecth-n01, interval: 1s}
  - name: plc
    type: tcp
    address: %[3]s
    devices:
      - {id: air, profile: renke/rs-ws-n01-8, unit: 2, interval: 1s}
streams:
  - {id: buoy, profile: generic/met-buoy-gmx500-awac, port: %[4]s, baud: 4800}
`

// TestBusyPortRefused runs the gateway in-process on an RS485 line (named
// by a /dev/serial/by-id style link), a Modbus TCP server and a buoy, and
// checks that read, probe and set refuse its serial ports, whichever name
// they are given, say who owns them, and exit 1 — while its TCP server is
// shared freely. Once the gateway has stopped, its stale lock files block
// nothing.
func TestBusyPortRefused(t *testing.T) {
	runDir := t.TempDir()
	t.Setenv(portlock.DirEnv, runDir)
	srv, bus := rs485(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "usb-1a86_USB_Serial-if00-port0")
	if err := os.Symlink(srv.Path, link); err != nil {
		t.Fatal(err)
	}
	tcp := sim.NewServer(nil)
	tcp.AddUnit(2, &sim.AirSensor{Env: &sim.Environment{Seed: 5}})
	tcpAddr := sim.Listen(t, tcp)
	var mu sync.Mutex
	buoy := &sim.BuoyStream{Env: sim.Environment{Seed: 4}, Lat: 60.0845, Lon: 23.5391, Met: "XDR", Seed: 1}
	nmea := streamPort(t, 4800, time.Second, func(now time.Time) []byte { mu.Lock(); defer mu.Unlock(); return buoy.Next(now) })
	cfg := filepath.Join(dir, "gateway.yaml")
	body := fmt.Sprintf(busyConfig, filepath.Join(dir, "buf"), link, tcpAddr, nmea.Link)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	listening := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{ConfigPath: cfg, Log: slog.New(slog.DiscardHandler), LockDir: runDir,
			Listening: func(addr string) { listening <- addr }})
	}()
	select {
	case <-listening: // the ports are marked before the HTTP server is up
	case err := <-done:
		t.Fatalf("gateway stopped: %v", err)
	}
	gateway := func(what string) string {
		return fmt.Sprintf("is in use by the running gateway (pid %d, %s); stop it first (systemctl stop fieldwatch-gateway) "+
			"or read through it: fieldwatch-gateway status", os.Getpid(), what)
	}
	rtu := gateway("bus rs485")
	refused := []struct {
		name string
		args []string
		want string
	}{
		{"read the device behind the link", []string{"read", "-port", srv.Path, "-profile", "renke/rs-ecth-n01"},
			srv.Path + " " + gateway("bus rs485 on "+link)},
		{"read the link", []string{"read", "-port", link, "-profile", "renke/rs-ecth-n01"}, link + " " + rtu},
		{"read a configured bus", []string{"read", "-c", cfg, "-bus", "rs485", "-profile", "renke/rs-ecth-n01"}, rtu},
		{"read a configured device", []string{"read", "-c", cfg, "-device", "soil"}, rtu},
		{"probe", []string{"probe", "-port", link, "-bauds", "4800", "-units", "1-2"}, rtu},
		{"probe a configured bus", []string{"probe", "-c", cfg, "-bus", "rs485", "-units", "1"}, rtu},
		{"set", []string{"set", "-port", link, "-profile", "renke/rs-ecth-n01", "-new-unit", "9", "-yes"}, rtu},
		{"set, only saying what it would write", []string{"set", "-port", link, "-profile", "renke/rs-ecth-n01", "-new-unit", "9"}, rtu},
		{"read the buoy", []string{"read", "-port", nmea.Link, "-profile", "generic/met-buoy-gmx500-awac", "-for", "1s"},
			gateway("stream buoy")},
		{"read the configured buoy", []string{"read", "-c", cfg, "-device", "buoy", "-for", "1s"}, gateway("stream buoy")},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.args...)
			if code != ExitFail || !strings.Contains(errOut, tc.want) || out != "" {
				t.Fatalf("unexpected exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, tc.want)
			}
		})
	}
	if _, ok := bus.Units()[9]; ok {
		t.Fatal("set wrote to a port the gateway owns")
	}
	// A Modbus TCP server takes many clients: the gateway's is not refused.
	if code, out, errOut := run(t, "read", "-c", cfg, "-bus", "plc", "-unit", "2", "-profile", "renke/rs-ws-n01-8"); code != ExitOK {
		t.Fatalf("read over TCP: exit %d\n%s\n%s", code, out, errOut)
	}

	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(runDir, "ports", "*.lock")); len(files) != 2 {
		t.Fatalf("lock files %v, want the two the gateway left", files)
	}
	code, out, errOut := run(t, "read", "-port", link, "-profile", "renke/rs-ecth-n01")
	if code != ExitOK || !strings.Contains(out, "soil_moisture") {
		t.Fatalf("after the gateway stopped: exit %d\n%s\n%s", code, out, errOut)
	}
}
