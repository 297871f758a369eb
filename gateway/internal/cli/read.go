package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
)

func readCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("read", stderr)
	var t target
	t.flags(fs)
	device := fs.String("device", "", "a device of the config by `ID` (with -c); its bus, unit and profile are used")
	unit := fs.Int("unit", 0, "unit address `N` (default: the profile's)")
	model := fs.String("profile", "", "device profile `MODEL`, e.g. renke/rs-ecth-n01")
	watch := fs.Duration("watch", 0, "read again every `INTERVAL` until Ctrl-C")
	gap := fs.Int("max-gap", -1, "override the profile's largest gap read through, in `REGISTERS`")
	dur := fs.Duration("for", 10*time.Second, "stream devices and MQTT sources: how long to listen, a `DURATION`")
	url := fs.String("url", "", "an NDBC feed's `URL` (with an ndbc -profile)")
	file := fs.String("file", "", "an NDBC feed's file `PATH` (with an ndbc -profile)")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if *dur <= 0 {
		fmt.Fprintln(stderr, "-for must be positive")
		return ExitUsage
	}
	sr := &streamRead{dur: *dur, stdout: stdout, stderr: stderr, metrics: map[string]bool{}}
	var cfg *config.Config
	if *device != "" {
		var err error
		if cfg, err = t.loadConfig(); err != nil {
			fmt.Fprintln(stderr, err)
			return ExitConfig
		}
		if code, ok := sr.configured(ctx, cfg, *device); ok {
			return code
		}
	} else if code, ok := sr.adHoc(ctx, &t, *model, *url, *file); ok {
		return code
	}
	if *url != "" || *file != "" {
		fmt.Fprintln(stderr, "-url and -file are for NDBC feeds (an ndbc -profile)")
		return ExitUsage
	}
	if *device != "" {
		if err := t.fromDevice(cfg, *device, unit, model); err != nil {
			fmt.Fprintln(stderr, err)
			return ExitConfig
		}
	}
	if err := t.resolve(); err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	if err := t.free(); err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
	}
	if *model == "" {
		fmt.Fprintln(stderr, "name the device's -profile (or a configured -device)")
		return ExitUsage
	}
	p, err := t.profile(*model)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	if *unit == 0 {
		*unit = p.Modbus.Defaults.Unit
	}
	baud := t.baud
	if baud == 0 {
		baud = p.Modbus.Defaults.Baud
	}
	if *gap < 0 {
		*gap = p.Modbus.MaxGap
	}
	c, err := t.client(baud)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	defer c.Close()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	for {
		fmt.Fprintf(stdout, "%s unit %d, %s, %s\n", p.Model, *unit, t.describe(baud), time.Now().Format("15:04:05"))
		rows := readProfile(ctx, c, uint8(*unit), p, *gap)
		printRows(stdout, rows)
		failed := 0
		for _, r := range rows {
			if r.Err != nil {
				failed++
			}
		}
		if failed > 0 {
			fmt.Fprintf(stdout, "\n%d of %d values failed: %v\n", failed, len(rows), firstErr(rows))
		}
		if *watch <= 0 {
			if failed == len(rows) {
				return ExitFail
			}
			return ExitOK
		}
		select {
		case <-ctx.Done():
			return ExitOK
		case <-time.After(*watch):
		}
		fmt.Fprintln(stdout)
	}
}

func firstErr(rows []row) error {
	for _, r := range rows {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// loadConfig loads the config named by -c, or the default one.
func (t *target) loadConfig() (*config.Config, error) {
	if t.config == "" {
		t.config = defaultConfig()
	}
	return config.LoadFile(t.config)
}

// fromDevice fills the target, unit and profile from a device of cfg.
func (t *target) fromDevice(cfg *config.Config, id string, unit *int, model *string) error {
	for _, b := range cfg.Buses {
		for _, d := range b.Devices {
			if d.ID == id {
				t.bus = b.Name
				if *unit == 0 {
					*unit = d.Unit
				}
				if *model == "" {
					*model = d.Profile
				}
				if t.baud == 0 {
					t.baud = b.Baud
				}
				return nil
			}
		}
	}
	return fmt.Errorf("no device, stream or MQTT source %q in %s", id, cfg.File)
}
