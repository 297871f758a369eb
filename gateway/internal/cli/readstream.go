package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/drivers/mqttsrc"
	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/drivers/stream"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
	"github.com/fieldwatch/fieldwatch/gateway/internal/app"
	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/gateway/internal/portlock"
	"github.com/fieldwatch/fieldwatch/gateway/internal/streams"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// streamRead is `read` for a device that talks in a stream (an NMEA
// instrument, an RFID reader, an NDBC feed) or an MQTT source: it listens
// for a while and prints what arrives, decoded, as it arrives.
type streamRead struct {
	dur    time.Duration
	stdout io.Writer
	stderr io.Writer

	mu      sync.Mutex
	metrics map[string]bool
	lines   int
}

// unknownClock is the decoders' clock: the times printed are the laptop's,
// their quality does not matter here.
func unknownClock() telemetry.ClockQuality { return telemetry.ClockUnknown }

// configured reads the stream device or MQTT source id of cfg; ok is false
// when id is neither (a Modbus device, or nothing).
func (sr *streamRead) configured(ctx context.Context, cfg *config.Config, id string) (code int, ok bool) {
	for _, s := range cfg.Streams {
		if s.ID == id {
			return sr.stream(ctx, cfg, s), true
		}
	}
	for _, m := range cfg.MQTTSources {
		if m.ID == id {
			return sr.source(ctx, m), true
		}
	}
	return 0, false
}

// adHoc reads a stream device named by flags when model is a stream
// profile; ok is false when it is not (a Modbus profile, or none).
func (sr *streamRead) adHoc(ctx context.Context, t *target, model, url, file string) (code int, ok bool) {
	if model == "" {
		return 0, false
	}
	set, err := profiles.WithDir(t.profilesDir)
	if err != nil {
		fmt.Fprintln(sr.stderr, err)
		return ExitConfig, true
	}
	p, found := set.Get(model)
	switch {
	case found && p.Stream():
		t.set = set
		return sr.flags(ctx, t, url, file, p), true
	case found && p.Mqtt != nil:
		fmt.Fprintln(sr.stderr, "an MQTT mapping is read through a configured source: -c FILE -device SOURCE")
		return ExitUsage, true
	}
	return 0, false
}

// flags reads a stream device at -port, -tcp, -url or -file.
func (sr *streamRead) flags(ctx context.Context, t *target, url, file string, p *profiles.Profile) int {
	// A feed is fetched at once, and again only a day later.
	s := config.Stream{ID: "device", Profile: p.Model, Port: t.port, Address: t.tcp, URL: url, File: file,
		Baud: t.baud, Parity: t.parity, StopBits: t.stopBits, Interval: 24 * time.Hour}
	n := 0
	for _, v := range []string{s.Port, s.Address, s.URL, s.File} {
		if v != "" {
			n++
		}
	}
	if n != 1 || t.rtuOver != "" || t.bus != "" {
		fmt.Fprintln(sr.stderr, "name where the device is: -port DEV, -tcp HOST:PORT, -url URL or -file PATH")
		return ExitUsage
	}
	if s.Port != "" && s.Baud == 0 && p.Serial != nil {
		s.Baud = p.Serial.Baud
	}
	if s.Port != "" {
		if s.Baud == 0 {
			s.Baud = 9600
		}
		if err := s.Mode().Check(); err != nil {
			fmt.Fprintln(sr.stderr, err)
			return ExitUsage
		}
	}
	cfg := &config.Config{Profiles: t.set}
	return sr.stream(ctx, cfg, s)
}

// stream reads a configured or ad-hoc stream device.
func (sr *streamRead) stream(ctx context.Context, cfg *config.Config, s config.Stream) int {
	s.SilentAfter = nil // a technician wants to see the silence, not a verdict
	if s.Port != "" {
		if err := portlock.Check(portlock.Dir(), s.Port); err != nil {
			fmt.Fprintln(sr.stderr, err)
			return ExitFail
		}
	}
	d, err := app.StreamDevice(cfg, s, unknownClock)
	if err != nil {
		fmt.Fprintln(sr.stderr, err)
		return ExitUsage
	}
	if d.Open != nil {
		// Open once now, so a wrong path or a permission problem is
		// reported at once rather than retried in silence.
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := d.Open(octx)
		cancel()
		if err != nil {
			fmt.Fprintf(sr.stderr, "cannot open %s: %v%s\n", s.Where(), err, openHint(err))
			return ExitFail
		}
		c.Close()
	}
	fmt.Fprintf(sr.stdout, "%s (%s) on %s, listening for %v (Ctrl-C stops)\n", s.ID, s.Profile, where(s), sr.dur)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, sr.dur)
	defer cancel()
	log := slog.New(slog.NewTextHandler(sr.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := streams.NewRunner(d, sr.print, log, streams.NewMetrics(prometheus.NewRegistry()))
	r.Run(ctx)
	st := r.Status()
	sr.summary(st.Frames, st.Errors, st.Reconnects)
	if st.Frames == 0 {
		fmt.Fprintln(sr.stdout, "nothing decoded:", silenceHint(s))
		return ExitFail
	}
	return ExitOK
}

// source reads a configured MQTT source.
func (sr *streamRead) source(ctx context.Context, m config.MQTTSource) int {
	c := m.Config
	c.ClientID, c.PersistentSession = "", false // never take over the gateway's session
	src, err := mqttsrc.NewSource(c, unknownClock)
	if err != nil {
		fmt.Fprintln(sr.stderr, err)
		return ExitConfig
	}
	fmt.Fprintf(sr.stdout, "%s (%s) on %s topic %s, listening for %v (Ctrl-C stops)\n", m.ID, m.Profile,
		strings.Join(m.Brokers, ", "), m.Topic, sr.dur)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, sr.dur)
	defer cancel()
	if err := src.Run(ctx, sr.print); err != nil {
		fmt.Fprintln(sr.stderr, err)
	}
	st := src.Stats()
	fmt.Fprintf(sr.stdout, "\n%d messages received, %d mapped, %d filtered out", st.Received, st.Frames, st.Filtered)
	sr.summary(st.Frames, st.Errors, 0)
	if st.Connects == 0 {
		fmt.Fprintf(sr.stdout, "never connected: %s\n", st.LastError)
		return ExitFail
	}
	if st.Received == 0 {
		fmt.Fprintln(sr.stdout, "nothing arrived: check the topic filter and that the devices are sending")
		return ExitFail
	}
	return ExitOK
}

// print writes readings and events as they arrive.
func (sr *streamRead) print(out stream.Output) error {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.lines == 0 {
		fmt.Fprintf(sr.stdout, "%-12s  %-18s  %-26s  %12s  %-6s  %s\n", "TIME", "DEVICE", "METRIC / EVENT", "VALUE", "UNIT", "QUALITY")
	}
	for _, r := range out.Readings {
		q := "good"
		if r.Quality != telemetry.Good {
			q = strings.ToUpper(r.Quality.String())
		}
		fmt.Fprintf(sr.stdout, "%-12s  %-18s  %-26s  %12.10g  %-6s  %s\n", r.Time.Local().Format("15:04:05.000"), r.Device,
			r.Metric, r.Value, r.Unit, q)
		sr.metrics[r.Metric] = true
		sr.lines++
	}
	for _, e := range out.Events {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(e.Attrs)) {
			kv = append(kv, k+"="+e.Attrs[k])
		}
		for _, k := range slices.Sorted(maps.Keys(e.Values)) {
			kv = append(kv, fmt.Sprintf("%s=%g", k, e.Values[k]))
		}
		fmt.Fprintf(sr.stdout, "%-12s  %-18s  EVENT %s %s  %s\n", e.Time.Local().Format("15:04:05.000"), e.Device, e.Kind,
			e.Key, strings.Join(kv, " "))
		sr.lines++
	}
	return nil
}

// summary prints what was accepted and refused.
func (sr *streamRead) summary(frames uint64, errs map[string]uint64, reconnects uint64) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	fmt.Fprintf(sr.stdout, "\n%d frames decoded, %d metrics", frames, len(sr.metrics))
	if reconnects > 0 {
		fmt.Fprintf(sr.stdout, ", %d reconnects", reconnects)
	}
	if len(errs) == 0 {
		fmt.Fprintln(sr.stdout, ", nothing refused")
		return
	}
	kinds := make([]string, 0, len(errs))
	for k := range errs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, errs[k]))
	}
	fmt.Fprintf(sr.stdout, "; refused: %s\n", strings.Join(parts, ", "))
}

func where(s config.Stream) string {
	if s.Port != "" {
		return fmt.Sprintf("%s at %s", s.Port, serialport.Mode{Baud: s.Baud, Parity: s.Parity, StopBits: s.StopBits})
	}
	return s.Where()
}

// silenceHint says what to check when nothing was decoded.
func silenceHint(s config.Stream) string {
	switch {
	case s.Port != "":
		return fmt.Sprintf("check the baud rate (tried %d; NMEA is usually 4800, sometimes 9600 or 38400), the wiring (device TX to adapter RX, common ground) and that the device is powered; a reader sends only while a tag is in its field", s.Baud)
	case s.Address != "":
		return "check that the server forwards the device's serial port (its baud rate and mode are set in the server's web page)"
	}
	return "the feed held no rows that could be read"
}

// openHint explains the usual reasons a port does not open.
func openHint(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "permission denied"):
		return " (add your user to the dialout group: sudo usermod -aG dialout $USER, then log in again)"
	case strings.Contains(msg, "no such file") || strings.Contains(msg, "not found"):
		return " (see `fieldwatch-gateway ports` for the ports present)"
	case strings.Contains(msg, "busy"):
		return " (another program has the port open; stop the gateway service first)"
	}
	return ""
}
