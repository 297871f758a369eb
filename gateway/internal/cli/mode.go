package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/app"
	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// modeCmd puts a device of a running gateway in a mode by hand: the
// gateway writes a mode event, which an HJ 212 uplink turns into the flags
// of that device's readings (maintenance M, calibration C, stopped F) until
// the device is put back to normal.
func modeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("mode", stderr)
	path := fs.String("c", defaultConfig(), "config `FILE` (to find the gateway's http.listen)")
	addr := fs.String("addr", "", "the gateway's HTTP address `HOST:PORT` on this machine (overrides -c)")
	by := fs.String("by", technician(), "who sets the mode, recorded with it (`NAME`)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: fieldwatch-gateway mode [flags] DEVICE %s\n\n", strings.Join(telemetry.Modes, "|"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if fs.NArg() != 2 || !telemetry.ValidMode(fs.Arg(1)) {
		fs.Usage()
		return ExitUsage
	}
	if *addr == "" {
		cfg, err := config.LoadFile(*path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return ExitConfig
		}
		if cfg.HTTP.Listen == "" {
			fmt.Fprintln(stderr, "the config has no http.listen; the gateway takes no modes")
			return ExitConfig
		}
		*addr = loopback(cfg.HTTP.Listen)
	}
	body, _ := json.Marshal(app.ModeRequest{Mode: fs.Arg(1), By: *by})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+*addr+"/devices/"+fs.Arg(0)+"/mode",
		bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "cannot reach the gateway at %s: %v (is it running?)\n", *addr, err)
		return ExitFail
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "gateway answered %s: %s", resp.Status, out)
		return ExitFail
	}
	var a app.ModeAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		fmt.Fprintf(stderr, "unexpected answer from the gateway: %v\n", err)
		return ExitFail
	}
	fmt.Fprintf(stdout, "%s is in %s mode from %s (event %d)\n", a.Device, a.Mode, a.Time.Local().Format("2006-01-02 15:04:05"), a.Seq)
	if a.Mode != telemetry.ModeNormal {
		fmt.Fprintf(stdout, "put it back with: fieldwatch-gateway mode %s normal\n", a.Device)
	}
	return ExitOK
}

// technician is who runs the command: the user behind sudo, else the user.
func technician() string {
	for _, v := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if u := os.Getenv(v); u != "" {
			return u
		}
	}
	return ""
}

// loopback is the address to reach a listener at listen from this machine:
// a wildcard host (":9101", "0.0.0.0:9101") is reached on 127.0.0.1, as
// the gateway takes modes only from loopback.
func loopback(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0", "::":
		return net.JoinHostPort("127.0.0.1", port)
	}
	return listen
}
