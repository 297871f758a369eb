package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/gateway/internal/portlock"
)

const portsConfig = `gateway: {id: farm}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
buffer: {dir: %[1]s, fsync: "off"}
http: {listen: ""}
buses:
  - name: %[2]s
    type: rtu
    port: %[3]s
    devices:
      - {id: soil, profile: renke/rs-ecth-n01, interval: 1s}
`

const portsStream = `streams:
  - {id: buoy, profile: generic/met-buoy-gmx500-awac, port: %s}
`

// logged is a slog handler that tells when the gateway logs a message.
type logged map[string]chan struct{}

func (l logged) Enabled(context.Context, slog.Level) bool { return true }
func (l logged) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l logged) WithGroup(string) slog.Handler            { return l }
func (l logged) Handle(_ context.Context, r slog.Record) error {
	if ch, ok := l[r.Message]; ok {
		ch <- struct{}{}
	}
	return nil
}

func owner(t *testing.T, dir, port string) portlock.Owner {
	t.Helper()
	var e *portlock.InUseError
	if err := portlock.Check(dir, port); !errors.As(err, &e) {
		t.Fatalf("%s: got %v, want it in use", port, err)
	}
	return e.Owner
}

// TestPortsMarkedInUse: the gateway marks its serial ports in use while it
// runs; a reload moves the marks (and is refused when a new port is another
// gateway's); a second gateway on the same line does not start.
func TestPortsMarkedInUse(t *testing.T) {
	ptys := make([]string, 3)
	for i := range ptys {
		p, err := serialport.OpenPTY()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		ptys[i] = p.Slave
	}
	rs485, buoy, other := ptys[0], ptys[1], ptys[2]
	dir, runDir := t.TempDir(), t.TempDir()
	write := func(name, bus, port, stream string) string {
		body := fmt.Sprintf(portsConfig, filepath.Join(dir, "buf-"+name), bus, port)
		if stream != "" {
			body += fmt.Sprintf(portsStream, stream)
		}
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	path := write("gateway", "rs485", rs485, buoy)
	events := logged{"gateway running": make(chan struct{}, 4), "config reload refused; keeping the running config": make(chan struct{}, 4)}
	reload := make(chan struct{})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: path, Log: slog.New(events), Reload: reload, LockDir: runDir})
	}()
	<-events["gateway running"]
	if o := owner(t, runDir, rs485); o.PID != os.Getpid() || o.Kind != "bus" || o.Name != "rs485" || o.Config != path {
		t.Fatalf("unexpected owner %+v", o)
	}
	if o := owner(t, runDir, buoy); o.Kind != "stream" || o.Name != "buoy" {
		t.Fatalf("unexpected owner %+v", o)
	}

	// A second gateway configured on the same line does not start.
	err := Run(context.Background(), Options{ConfigPath: write("second", "line", rs485, ""), Log: slog.New(slog.DiscardHandler),
		LockDir: runDir})
	want := fmt.Sprintf("serial port %s is owned by another gateway (pid %d, bus rs485 of %s)", rs485, os.Getpid(), path)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second gateway: %v; want %q", err, want)
	}

	// A reload drops the buoy and renames the bus.
	write("gateway", "line-1", rs485, "")
	reload <- struct{}{}
	<-events["gateway running"]
	if err := portlock.Check(runDir, buoy); err != nil {
		t.Fatalf("a port the reloaded config dropped: %v", err)
	}
	if o := owner(t, runDir, rs485); o.Name != "line-1" {
		t.Fatalf("after reload, owner %+v", o)
	}

	// A reload onto a port another process holds is refused.
	held, err := portlock.Open(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := held.Set([]portlock.Owner{{Kind: "bus", Name: "elsewhere", Port: other}}); err != nil {
		t.Fatal(err)
	}
	write("gateway", "line-1", rs485, other)
	reload <- struct{}{}
	<-events["config reload refused; keeping the running config"]
	held.Release()
	if o := owner(t, runDir, rs485); o.Name != "line-1" {
		t.Fatalf("after a refused reload, owner %+v", o)
	}

	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, p := range ptys {
		if err := portlock.Check(runDir, p); err != nil {
			t.Fatalf("after the gateway stopped: %v", err)
		}
	}
}

// TestRunsWithoutRuntimeDirectory: a gateway that cannot create its
// runtime directory says so and runs all the same.
func TestRunsWithoutRuntimeDirectory(t *testing.T) {
	p, err := serialport.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(portsConfig, filepath.Join(dir, "buf"), "rs485", p.Slave)), 0o644); err != nil {
		t.Fatal(err)
	}
	events := logged{"serial ports not marked in use: read, probe and set run as root will not refuse them": make(chan struct{}, 1),
		"gateway running": make(chan struct{}, 1)}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: path, Log: slog.New(events), LockDir: filepath.Join(path, "run")})
	}()
	<-events["serial ports not marked in use: read, probe and set run as root will not refuse them"]
	<-events["gateway running"]
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
