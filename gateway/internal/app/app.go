// Package app wires the gateway together: config → buffer, one poller per
// bus, uplink, and the HTTP endpoints (/metrics, /healthz, /status). Run is
// what `fieldwatch-gateway run` calls; tests start it in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	"github.com/fieldwatch/fieldwatch/drivers/mqttsrc"
	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/gateway/internal/clock"
	"github.com/fieldwatch/fieldwatch/gateway/internal/command"
	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/gateway/internal/fleet"
	"github.com/fieldwatch/fieldwatch/gateway/internal/hj212up"
	"github.com/fieldwatch/fieldwatch/gateway/internal/poller"
	"github.com/fieldwatch/fieldwatch/gateway/internal/streams"
	"github.com/fieldwatch/fieldwatch/gateway/internal/update"
	"github.com/fieldwatch/fieldwatch/gateway/internal/uplink"
	"github.com/fieldwatch/fieldwatch/internal/version"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Options start a gateway.
type Options struct {
	ConfigPath string
	Log        *slog.Logger
	// Reload, when it delivers, re-reads the config: a valid one replaces
	// the running setup, an invalid one is refused and counted while the
	// gateway keeps running as it was.
	Reload <-chan struct{}
	// Listening, if set, is told the HTTP address once it is bound (and
	// the ports are marked in use).
	Listening func(addr string)
	// LockDir is the runtime directory where the gateway marks the serial
	// ports it owns (portlock), so the technician commands refuse them;
	// empty marks nothing.
	LockDir string
	// Executable is the path the gateway was started by (argv[0]): the
	// symbolic link binary updates switch (docs/fleet.md, Binary updates).
	Executable string
	// Trial is the trial file when this process is a new binary on trial
	// ($FIELDWATCH_UPDATE_TRIAL), else empty.
	Trial string
}

// App is a running gateway's shared state: what outlives a config reload.
type App struct {
	log     *slog.Logger
	reg     *prometheus.Registry
	started time.Time
	poller  *poller.Metrics
	streams *streams.Metrics
	uplink  *uplink.Metrics
	hj212   *hj212up.Metrics
	reloads *prometheus.CounterVec

	// The process's clock timeline, and the first item this process
	// appended to the buffer stream runStream: items from it on can be
	// re-stamped if the clock was unsynced (a reload keeps both).
	timeline  *clock.Timeline
	runStream string
	runFirst  uint64
	// Clock events that could not be written to the buffer.
	clockUnwritten atomic.Uint64

	// fleet takes remote configs; applies carries them to Run's loop,
	// which swaps them in like a SIGHUP reload.
	fleet   *fleet.Manager
	applies chan applyRequest
	// cmds takes remote commands; a restart command asks Run to return
	// ErrRestart through restart.
	cmds    *command.Handler
	restart chan struct{}
	// update takes release manifests; a release ready to be tried asks
	// Run to return an *update.SwapError through swaps.
	update *update.Updater
	swaps  chan *update.Trial
	trial  bool // this process is a new binary on trial

	mu  sync.Mutex
	cur *running // the setup currently running, nil between setups
}

// applyRequest asks Run's loop to run cfg; done hears whether it took it.
type applyRequest struct {
	cfg  *config.Config
	done chan error
}

// running is one config's worth of buffer, buses, stream devices, MQTT
// sources and uplink.
type running struct {
	cfg     *config.Config
	buf     *buffer.Buffer
	buses   []*poller.Bus
	streams []*streams.Runner
	sources []*source
	up      *uplink.Uplink
	hj212   []*hj212up.Uplink // one per hj212_uplinks entry, in order
	clock   func() telemetry.ClockQuality
}

// Run loads the config and runs the gateway until ctx is done.
func Run(ctx context.Context, o Options) error {
	a := newApp(o.Log)
	a.fleet = fleet.New(o.ConfigPath, a.log, a.reg)
	a.update = update.New(update.Options{Link: o.Executable, Target: runtime.GOOS + "/" + arch(),
		Version: version.Version, Trial: o.Trial, Log: a.log}, a.reg)
	a.trial = o.Trial != ""
	cfg, err := a.fleet.Load()
	if err != nil {
		return err
	}
	cfg.WarnLoose(o.Log)
	ports := a.openPortLock(o.LockDir, cfg)
	if err := a.lockPorts(ports, cfg); err != nil {
		return err
	}
	defer ports.Release()
	if cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("cannot listen for HTTP: %w", err)
		}
		// Bounded like the cloud's (docs/decisions.md §21): a slow or idle
		// client cannot hold a connection on a small field device.
		srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 32 << 10}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("HTTP server stopped", "err", err)
			}
		}()
		defer srv.Close()
		a.log.Info("serving metrics and status", "addr", "http://"+ln.Addr().String())
		if o.Listening != nil {
			o.Listening(ln.Addr().String())
		}
	}
	fctx, stopFleet := context.WithCancel(ctx)
	defer stopFleet()
	go a.fleet.Run(fctx, host{a})
	go a.cmds.Run(fctx, a.commandHost)
	go a.update.Run(fctx, updateHost{a})
	for {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.runSetup(rctx, cfg) }()
		for reloaded := false; !reloaded; {
			select {
			case err := <-done:
				cancel()
				return err
			case <-a.restart:
				a.log.Warn("restarting on a remote command")
				cancel()
				if err := <-done; err != nil {
					return err
				}
				return ErrRestart
			case t := <-a.swaps:
				a.log.Warn("stopping to hand over to a new release", "version", t.Version)
				cancel()
				if err := <-done; err != nil {
					return err
				}
				return &update.SwapError{Trial: t}
			case req := <-a.applies:
				// A remote config (gateway/internal/fleet), already
				// validated: swapped in as a reload is.
				err := a.lockPorts(ports, cfg, req.cfg)
				req.done <- err
				if err != nil {
					continue
				}
				a.log.Info("remote config taken; restarting buses and uplink")
				req.cfg.WarnLoose(a.log)
				cancel()
				if err := <-done; err != nil {
					return err
				}
				if err := a.lockPorts(ports, req.cfg); err != nil {
					return err
				}
				cfg, reloaded = req.cfg, true
			case <-o.Reload:
				next, err := a.fleet.Load()
				if err != nil {
					a.reloads.WithLabelValues("failure").Inc()
					a.log.Error("config reload refused; keeping the running config", "err", err)
					continue
				}
				// The new setup's ports are taken before the old one
				// stops, so a port owned elsewhere refuses the reload;
				// the old one's are let go once it has stopped.
				if err := a.lockPorts(ports, cfg, next); err != nil {
					a.reloads.WithLabelValues("failure").Inc()
					a.log.Error("config reload refused; keeping the running config", "err", err)
					continue
				}
				a.reloads.WithLabelValues("success").Inc()
				a.log.Info("config reloaded; restarting buses and uplink")
				next.WarnLoose(a.log)
				cancel()
				if err := <-done; err != nil {
					return err
				}
				if err := a.lockPorts(ports, next); err != nil {
					return err
				}
				cfg, reloaded = next, true
			}
		}
	}
}

func newApp(log *slog.Logger) *App {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &App{log: log, reg: reg, started: time.Now(), applies: make(chan applyRequest), restart: make(chan struct{}, 1), swaps: make(chan *update.Trial, 1),
		cmds: command.New(log, reg), timeline: clock.NewTimeline(), poller: poller.NewMetrics(reg), streams: streams.NewMetrics(reg),
		uplink: uplink.NewMetrics(reg), hj212: hj212up.NewMetrics(reg)}
	reg.MustRegister(sourceCollector{a})
	a.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fieldwatch_gateway_config_reloads_total",
		Help: "Config reloads by result; a failed one leaves the gateway running on its previous config.",
	}, []string{"result"})
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "fieldwatch_gateway_clock_events_lost_total",
		Help: "Clock events (the clock turning unsynced or synced) that could not be written to the buffer.",
	}, func() float64 { return float64(a.clockUnwritten.Load() + a.timeline.Lost()) }))
	reg.MustRegister(a.reloads, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fieldwatch_gateway_build_info", Help: "Always 1; the version label says which build runs.",
		ConstLabels: prometheus.Labels{"version": version.Version},
	}, func() float64 { return 1 }))
	a.registerBufferMetrics()
	return a
}

// runSetup runs one config until ctx is done.
func (a *App) runSetup(ctx context.Context, cfg *config.Config) error {
	fixed, _ := config.ClockQuality(cfg.Gateway.Clock) // validated
	clk := clock.New(fixed, a.timeline)
	bo := cfg.Buffer.Options(cfg.Gateway.ID)
	bo.Logger = a.log.With("component", "buffer")
	bo.Clock = clk.Quality
	for _, h := range cfg.HJ212Uplinks {
		for _, k := range h.Kinds() { // a cursor in the buffer per uplink and kind of data
			bo.Consumers = append(bo.Consumers, h.Consumer(k))
		}
	}
	buf, err := buffer.Open(bo)
	if err != nil {
		return fmt.Errorf("cannot open buffer %s: %w", cfg.Buffer.Dir, err)
	}
	defer buf.Close()
	if buf.Stream() != a.runStream {
		a.runStream, a.runFirst = buf.Stream(), buf.Next()
	}
	r := &running{cfg: cfg, buf: buf, clock: clk.Quality}
	// The uplink first: the buses and stream devices tell it when a
	// device's health changes, so it publishes the state soon.
	r.up, err = uplink.New(uplink.Options{Config: cfg.Uplink, Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site,
		Buffer: buf, State: func() telemetry.State { return a.state(r) }, Log: a.log, Metrics: a.uplink,
		Clock: a.timeline, RunFirst: a.runFirst, Started: a.started, OnConfig: a.onConfig(cfg),
		OnCommand: a.onCommand(cfg), OnRelease: a.onRelease(cfg)})
	if err != nil {
		return err
	}
	for _, h := range cfg.HJ212Uplinks {
		cons := map[string]*buffer.Consumer{}
		for _, k := range h.Kinds() {
			cons[k] = buf.Consumer(h.Consumer(k))
		}
		r.hj212 = append(r.hj212, hj212up.New(hj212up.Options{Config: h, Buffer: buf, Consumers: cons, Log: a.log,
			Metrics: a.hj212, Clock: clk.Quality, History: cfg.Buffer.History > 0, OverRange: aboveRange(cfg)}))
	}
	for _, bc := range cfg.Buses {
		devs := make([]poller.Device, 0, len(bc.Devices))
		for _, d := range bc.Devices {
			p, _ := cfg.Profiles.Get(d.Profile) // validated
			devs = append(devs, poller.Device{ID: d.ID, Profile: p, Unit: uint8(d.Unit), Interval: d.Interval, MaxGap: d.MaxGap})
		}
		r.buses = append(r.buses, poller.NewBus(poller.Options{
			Name: bc.Name, Client: bc.NewClient(), Devices: devs,
			Sink:    func(rs []telemetry.Reading) error { _, err := buf.Append(rs); return err },
			Events:  func(es []telemetry.Event) error { _, err := buf.AppendEvents(es); return err },
			Changed: r.up.StateChanged,
			Retries: *bc.Retries,
			Quarantine: poller.Quarantine{After: bc.Quarantine.After, Backoff: bc.Quarantine.Backoff,
				MaxBackoff: bc.Quarantine.MaxBackoff},
			Clock: clk.Quality, Log: a.log, Metrics: a.poller,
		}))
	}
	sink := bufferSink(buf)
	for _, sc := range cfg.Streams {
		d, err := StreamDevice(cfg, sc, clk.Quality)
		if err != nil {
			return err
		}
		d.Changed = r.up.StateChanged
		r.streams = append(r.streams, streams.NewRunner(d, sink, a.log, a.streams))
	}
	for _, mc := range cfg.MQTTSources {
		src, err := mqttsrc.NewSource(mc.Config, clk.Quality)
		if err != nil {
			return fmt.Errorf("mqtt source %s: %w", mc.ID, err)
		}
		r.sources = append(r.sources, &source{cfg: mc, src: src})
	}
	a.mu.Lock()
	a.cur = r
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.cur = nil
		a.mu.Unlock()
	}()
	a.log.Info("gateway running", "gateway", cfg.Gateway.ID, "buses", len(r.buses), "streams", len(r.streams),
		"mqtt_sources", len(r.sources), "hj212_uplinks", len(r.hj212), "stream", buf.Stream(),
		"buffered", buf.Stats().Readings, "version", version.Version)

	var wg sync.WaitGroup
	busCtx, stopBuses := context.WithCancel(ctx)
	defer stopBuses()
	for _, b := range r.buses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Run(busCtx); err != nil {
				a.log.Error("bus stopped", "err", err)
			}
		}()
	}
	for _, s := range r.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(busCtx); err != nil {
				a.log.Error("stream device stopped", "device", s.Device().ID, "err", err)
			}
		}()
	}
	for _, s := range r.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(busCtx, sink, a.log)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.reportClock(busCtx, a.timeline.Changes(), buf, cfg.Gateway.ID)
	}()
	// The uplink outlives the buses by a moment, so the last readings
	// acquired are in the buffer before it announces "offline".
	upCtx, stopUplink := context.WithCancel(context.Background())
	upDone := make(chan error, 1)
	go func() { upDone <- r.up.Run(upCtx) }()
	var hjWG sync.WaitGroup
	for _, h := range r.hj212 {
		hjWG.Add(1)
		go func() {
			defer hjWG.Done()
			h.Run(upCtx)
		}()
	}
	<-ctx.Done()
	stopBuses()
	wg.Wait()
	stopUplink()
	hjWG.Wait()
	return <-upDone
}

// state describes the gateway for its retained state message.
func (a *App) state(r *running) telemetry.State {
	s := telemetry.State{Version: version.Version, Site: r.cfg.Gateway.Site, Name: r.cfg.Gateway.Name,
		SiteName: r.cfg.Gateway.SiteName, Location: r.cfg.Gateway.Location,
		Started: a.started.UTC(), Arch: arch(), Uptime: telemetry.Duration(time.Since(a.started).Truncate(time.Second)),
		BufferMaxBytes: int64(r.cfg.Buffer.MaxBytes), Labels: r.cfg.Gateway.Labels}
	s.BufferBytes = r.buf.Stats().Bytes
	s.Clock = clockState(r.clock(), clock.Kernel)
	if a.fleet != nil {
		s.Config = a.fleet.Report()
	}
	if r.cfg.UpdatesEnabled() {
		s.Update = a.update.Report()
	}
	ports := make(map[string]string, len(r.cfg.Buses))
	for _, bc := range r.cfg.Buses {
		port := bc.Port // rtu
		if port == "" {
			port = bc.Address // tcp, rtu-over-tcp
		}
		ports[bc.Name] = telemetry.AttrText(port) // a by-id path of over 128 bytes is cut
	}
	for _, b := range r.buses {
		for _, d := range b.Status() {
			ds := telemetry.DeviceState{ID: d.ID, Profile: d.Profile, Interval: telemetry.Duration(d.Interval), Health: d.Health,
				Bus: d.Bus, Port: ports[d.Bus], LastRead: utc(d.LastGood)}
			if d.Health == poller.HealthFailing || d.Health == poller.HealthQuarantined {
				ds.Error = d.LastError
			}
			s.Devices = append(s.Devices, ds)
		}
	}
	moorings := map[string]*telemetry.Mooring{}
	for _, sc := range r.cfg.Streams {
		if m := sc.Mooring; m != nil {
			moorings[sc.ID] = &telemetry.Mooring{Lat: m.Lat, Lon: m.Lon, RadiusM: m.RadiusM}
		}
	}
	for _, sr := range r.streams {
		st, d := sr.Status(), sr.Device()
		ds := telemetry.DeviceState{ID: st.ID, Profile: st.Profile, Health: st.Health, LastRead: utc(st.LastRead),
			Mooring: moorings[st.ID]}
		switch {
		case d.Fetch != nil:
			// A feed's acquisition times are its own (NDBC's hourly
			// observations, published late): the cloud learns the pace.
		case d.SilentAfter > 0:
			ds.Interval = telemetry.Duration(d.SilentAfter)
		default:
			ds.Quiet = true // a reader without tags says nothing
		}
		if st.Health == "failing" {
			ds.Error = st.LastError
		}
		s.Devices = append(s.Devices, ds)
	}
	return s
}

// clockState is the clock for the state message: its quality and, when an
// NTP daemon disciplines the kernel's clock, the offset it is still
// correcting and its maximum error (kernel: clock.Kernel).
func clockState(q telemetry.ClockQuality, kernel func() (offset, maxError time.Duration, ok bool)) *telemetry.ClockState {
	if q == telemetry.ClockUnknown || q == telemetry.ClockRestamped {
		return nil
	}
	c := &telemetry.ClockState{Quality: q.String()}
	if q != telemetry.ClockNTP {
		return c
	}
	if off, maxErr, ok := kernel(); ok {
		o, m := off.Seconds(), maxErr.Seconds()
		c.OffsetS, c.MaxErrorS = &o, &m
	}
	return c
}

// arch is the architecture the gateway was built for: GOARCH, and for arm
// its version (armv7), as the build recorded it.
var arch = sync.OnceValue(func() string {
	a := runtime.GOARCH
	if a != "arm" {
		return a
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" && s.Value != "" {
				return "armv" + strings.SplitN(s.Value, ",", 2)[0] // "7,softfloat"
			}
		}
	}
	return a
})

// utc is t in UTC, and zero when t is.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func (a *App) current() *running {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur
}

func (a *App) registerBufferMetrics() {
	stat := func(f func(buffer.Stats) float64) func() float64 {
		return func() float64 {
			if r := a.current(); r != nil {
				return f(r.buf.Stats())
			}
			return 0
		}
	}
	gauge := func(name, help string, f func(buffer.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldwatch_gateway_buffer_" + name, Help: help}, stat(f))
	}
	a.reg.MustRegister(
		gauge("readings", "Readings in the buffer awaiting the cloud's ack.",
			func(s buffer.Stats) float64 { return float64(s.Readings) }),
		gauge("bytes", "Bytes of buffer segments on disk.",
			func(s buffer.Stats) float64 { return float64(s.Bytes) }),
		gauge("dropped_readings", "Items (readings, events) dropped unsent because the buffer hit max_bytes, since the buffer was opened; each drop is also sent upstream as a gap event.",
			func(s buffer.Stats) float64 { return float64(s.Dropped) }),
		gauge("refused_readings", "Of the dropped items, those refused at append under overflow: drop_newest, since the buffer was opened.",
			func(s buffer.Stats) float64 { return float64(s.Refused) }),
		gauge("gap_events", "Gap events recorded (exact count and time span of dropped items), since the buffer was opened.",
			func(s buffer.Stats) float64 { return float64(s.Gaps) }),
		gauge("syncs", "fsyncs of the buffer since it was opened; with fsync: always, appends that arrive together share one.",
			func(s buffer.Stats) float64 { return float64(s.Syncs) }),
		gauge("high", "1 while the buffer is high: its bytes reached 80 % of max_bytes and have not fallen below 70 % since (each change is a buffer event).",
			func(s buffer.Stats) float64 {
				if s.High {
					return 1
				}
				return 0
			}),
		gauge("lost_events", "Buffer events (high, normal) that could not be written to the buffer, since it was opened.",
			func(s buffer.Stats) float64 { return float64(s.LostEvents) }),
		gauge("truncated_bytes", "Bytes cut from damaged buffer segments when the buffer was last opened.",
			func(s buffer.Stats) float64 { return float64(s.TruncatedBytes) }),
		gauge("kept_dropped_readings", "Acknowledged items kept for buffer.keep_acked that the byte budget deleted before their window ended, since the buffer was opened.",
			func(s buffer.Stats) float64 { return float64(s.KeptDropped) }),
		gauge("retained_bytes", "Bytes of acknowledged items kept on disk (buffer.keep_acked, buffer.history); the budget deletes them first.",
			func(s buffer.Stats) float64 { return float64(s.RetainedBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldwatch_gateway_uplink_connected",
			Help: "1 when connected to the broker."}, func() float64 {
			if r := a.current(); r != nil && r.up.Connected() {
				return 1
			}
			return 0
		}),
	)
}

// aboveRange says whether a bad reading of a Modbus device is bad because
// its value is above its profile's range (HJ 212's flag T): what the
// reading itself does not carry.
func aboveRange(cfg *config.Config) func(telemetry.Reading) bool {
	fields := map[[2]string]*modbus.Field{}
	for _, bc := range cfg.Buses {
		for _, d := range bc.Devices {
			p, ok := cfg.Profiles.Get(d.Profile)
			if !ok || p.Modbus == nil {
				continue
			}
			for i := range p.Modbus.Fields {
				f := &p.Modbus.Fields[i]
				fields[[2]string{d.ID, f.Metric}] = f
			}
		}
	}
	return func(r telemetry.Reading) bool {
		f := fields[[2]string{r.Device, r.Metric}]
		return f != nil && f.AboveRange(r.Value)
	}
}

// onConfig is the uplink's handler for remote configs, nil when the
// config does not take them.
func (a *App) onConfig(cfg *config.Config) func([]byte) {
	if a.fleet == nil || !cfg.RemoteEnabled() {
		return nil
	}
	return a.fleet.Offer
}

// host is the App as the fleet manager sees it.
type host struct{ a *App }

func (h host) Apply(ctx context.Context, cfg *config.Config) error {
	req := applyRequest{cfg: cfg, done: make(chan error, 1)}
	select {
	case h.a.applies <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done
}

func (h host) Changed() {
	if r := h.a.current(); r != nil {
		r.up.StateChanged()
	}
}

func (h host) Health(cfg *config.Config) (devices []telemetry.DeviceState, connected, running bool) {
	r := h.a.current()
	if r == nil || (cfg != nil && r.cfg != cfg) {
		return nil, false, false
	}
	return h.a.state(r).Devices, r.up.Connected(), true
}
