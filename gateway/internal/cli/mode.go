package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/fieldwatch/fieldwatch/gateway/internal/app"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// modeCmd puts a device of a running gateway in a mode by hand: the
// gateway writes a mode event, which an HJ 212 uplink turns into the flags
// of that device's readings (maintenance M, calibration C, stopped F) until
// the device is put back to normal.
func modeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("mode", stderr)
	var g gatewayHTTP
	g.flags(fs)
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
	body, _ := json.Marshal(app.ModeRequest{Mode: fs.Arg(1), By: *by})
	out, code := g.call(ctx, http.MethodPost, "/devices/"+url.PathEscape(fs.Arg(0))+"/mode", body, stderr)
	if code != ExitOK {
		return code
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
