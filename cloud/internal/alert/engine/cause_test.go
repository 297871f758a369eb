package engine

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// field is a gateway with six devices on two buses (a farm like the demo's),
// a registry and an engine on one fake clock. Every test drives time by
// hand: the gateway polls every 10 s, heartbeats every 30 s.
type field struct {
	t      *testing.T
	e      *Engine
	reg    *registry.Registry
	sink   *recorder
	now    time.Time
	mono   time.Time
	intake string
	seq    uint64
	health map[string]string // device → health the gateway reports
	hung   bool
	opts   Options
}

var farm = []struct{ id, bus string }{
	{"soil-east", "dtu"}, {"soil-west", "dtu"}, {"soil-orchard", "dtu"}, {"air-mast", "dtu"},
	{"weather-mast", "rs485"}, {"soil-7in1", "rs485"},
}

const interval, heartbeat = 10 * time.Second, 30 * time.Second

func (f *field) Health() string { return f.intake }

func newField(t *testing.T, ruleYAML string) *field {
	t.Helper()
	return newFieldWith(t, ruleYAML, func(*Options) {})
}

// newFieldWith builds the field with the engine options changed by opt.
func newFieldWith(t *testing.T, ruleYAML string, opt func(*Options)) *field {
	t.Helper()
	f := &field{t: t, sink: &recorder{}, now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), health: map[string]string{}}
	f.mono = f.now
	f.reg = registry.NewWithClock(func() time.Time { return f.now })
	var rs []rules.Rule
	if ruleYAML != "" {
		var err error
		if rs, err = rules.Parse("test.yaml", []byte(ruleYAML)); err != nil {
			t.Fatal(err)
		}
	}
	f.opts = Options{Rules: rs, Registry: f.reg, Sink: f.sink, Now: func() time.Time { return f.now },
		Intake: f, GatewayOffline: Builtin{For: 20 * time.Second}, Tick: 5 * time.Second}
	opt(&f.opts)
	f.open()
	f.state()
	return f
}

// open starts the engine on f's options (again, after a restart).
func (f *field) open() {
	f.t.Helper()
	e, err := New(f.opts)
	if err != nil {
		f.t.Fatal(err)
	}
	e.mono = func() time.Time { return f.mono }
	e.lastTick = f.mono
	f.t.Cleanup(func() { e.Close() })
	f.e = e
}

// state publishes the gateway's state message.
func (f *field) state() {
	var devs []telemetry.DeviceState
	for _, d := range farm {
		h := f.health[d.id]
		if h == "" {
			h = "ok"
		}
		devs = append(devs, telemetry.DeviceState{ID: d.id, Profile: "renke/rs-ecth-n01", Interval: telemetry.Duration(interval),
			Health: h, Bus: d.bus, Port: "/dev/tty-" + d.bus})
	}
	f.reg.ObserveState("farm", telemetry.State{State: telemetry.StateOnline, Site: "north", Time: f.now,
		Heartbeat: telemetry.Duration(heartbeat), Devices: devs}, false)
}

// poll sends one reading of every device not in silent, as a batch.
func (f *field) poll(silent ...string) {
	f.seq++
	b := &telemetry.Batch{Gateway: "farm", Site: "north", Stream: "s", FirstSeq: f.seq}
	for _, d := range farm {
		if !slices.Contains(silent, d.id) {
			b.Readings = append(b.Readings, telemetry.Reading{Device: d.id, Metric: "soil_moisture", Value: 30, Unit: "%", Time: f.now})
		}
	}
	if len(b.Readings) == 0 {
		return
	}
	f.reg.Heard(b)
	f.reg.ObserveBatch(b)
	if err := f.e.Observe(context.Background(), b); err != nil {
		f.t.Fatal(err)
	}
}

// run advances time by d in steps of a second: the gateway polls (unless
// hung) every interval and heartbeats every heartbeat, the engine ticks
// every 5 s. silent devices do not answer.
func (f *field) run(d time.Duration, silent ...string) {
	f.t.Helper()
	end := f.now.Add(d)
	for f.now.Before(end) {
		f.now = f.now.Add(time.Second)
		f.mono = f.mono.Add(time.Second)
		s := f.now.Sub(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
		if !f.hung && s%interval == 0 {
			f.poll(silent...)
		}
		if !f.hung && s%heartbeat == 0 {
			f.state()
		}
		if s%(5*time.Second) == 0 {
			if err := f.e.Tick(context.Background()); err != nil {
				f.t.Fatal(err)
			}
		}
	}
}

// active lists the pending and firing alerts as "alertname state severity".
func (f *field) active() []string {
	var out []string
	for _, a := range f.e.Alerts(Filter{}) {
		s := a.Labels["alertname"] + " " + string(a.State) + " " + a.Severity.String()
		if a.Muted() {
			s += " muted"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func (f *field) wantActive(want ...string) {
	f.t.Helper()
	if got := f.active(); !slices.Equal(got, want) {
		f.t.Fatalf("at %v active %q, want %q", f.now.Format("15:04:05"), got, want)
	}
}

func (f *field) firing(name string) alert.Alert {
	f.t.Helper()
	for _, a := range f.e.Alerts(Filter{State: "firing"}) {
		if a.Labels["alertname"] == name {
			return a
		}
	}
	f.t.Fatalf("no %s firing: %q", name, f.active())
	return alert.Alert{}
}

func TestHungGatewayIsOneAlert(t *testing.T) {
	f := newField(t, "")
	f.run(time.Minute)
	f.wantActive()
	f.hung = true // SIGSTOP: no data, no heartbeat, the broker session still up
	f.run(3 * time.Minute)
	f.wantActive("GatewayOffline firing orange")
	a := f.firing("GatewayOffline")
	if a.Annotations["device_count"] != "6" || !strings.Contains(a.Annotations["cause"], "not responding") {
		t.Fatalf("gateway alert does not name its cause and devices: %v", a.Annotations)
	}
	f.reg.ObserveState("farm", telemetry.State{State: telemetry.StateOffline, Time: f.now}, false) // the last will, later
	f.run(time.Minute)
	f.wantActive("GatewayOffline firing orange")
	if a := f.firing("GatewayOffline"); !strings.Contains(a.Annotations["cause"], "offline since") {
		t.Fatalf("cause not updated by the last will: %v", a.Annotations["cause"])
	}
	if got := f.sink.states(); !slices.Equal(got, []string{"firing orange"}) {
		t.Fatalf("notified %q, want one firing", got)
	}
	f.hung = false // SIGCONT: it reconnects, says it is online, delivers
	f.state()
	f.run(30 * time.Second)
	f.wantActive()
	if got := f.sink.states(); !slices.Equal(got, []string{"firing orange", "resolved orange"}) {
		t.Fatalf("notified %q", got)
	}
	h, _ := f.e.History(context.Background(), HistoryQuery{Gateway: "farm"})
	for _, tr := range h {
		if tr.Rule != "gateway_offline" {
			t.Fatalf("history has %s %s: one cause, one alert", tr.Rule, tr.To)
		}
	}
}

func TestCutBusIsOneAlert(t *testing.T) {
	f := newField(t, "")
	f.run(time.Minute)
	dtu := []string{"soil-east", "soil-west", "soil-orchard", "air-mast"}
	// The DTU's cable is cut: its four devices time out, the gateway says
	// so in its next state message and keeps polling the RS485 line.
	for _, d := range dtu {
		f.health[d] = "failing"
	}
	f.run(10*time.Second, dtu...)
	f.state()
	f.run(2*time.Minute, dtu...)
	f.wantActive("BusDown firing blue")
	a := f.firing("BusDown")
	if a.Labels["bus"] != "dtu" || a.Annotations["devices"] != "air-mast, soil-east, soil-orchard, soil-west" {
		t.Fatalf("bus alert %v %v", a.Labels, a.Annotations)
	}
	clear(f.health)
	f.state()
	f.run(20 * time.Second)
	f.wantActive()
}

func TestOneDeadDeviceIsItsOwnAlert(t *testing.T) {
	f := newField(t, "")
	f.run(time.Minute)
	f.run(2*time.Minute, "soil-7in1") // the other device on its bus still answers
	f.wantActive("DeviceSilent firing blue")
	if a := f.firing("DeviceSilent"); a.Labels["device"] != "soil-7in1" || !strings.Contains(a.Annotations["cause"], "no data for") {
		t.Fatalf("%v %v", a.Labels, a.Annotations)
	}
}

func TestNoFalseSilenceWhenTheCloudStalls(t *testing.T) {
	f := newField(t, "")
	f.run(time.Minute)
	// The cloud is paused for 30 s (SIGSTOP): no ticks, no batches judged;
	// the gateway buffers. On resume its first check notices the pause
	// before the buffered batches are in.
	f.now = f.now.Add(30 * time.Second)
	f.mono = f.mono.Add(30 * time.Second)
	if err := f.e.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.run(time.Minute)
	f.wantActive()
	if got := f.sink.states(); len(got) != 0 {
		t.Fatalf("a cloud stall notified %q", got)
	}
}

func TestBrokerLostIsTheCloudsAlertOnly(t *testing.T) {
	f := newFieldWith(t, "", func(o *Options) { o.CloudIntake.For = 10 * time.Second })
	f.run(time.Minute)
	f.intake = "lost its broker connection"
	f.hung = true // nothing reaches the cloud either way
	f.run(45 * time.Second)
	f.wantActive("CloudIntakeDown firing orange")
	f.intake, f.hung = "", false
	f.state()
	f.run(time.Minute)
	f.wantActive()
	if got := f.sink.states(); !slices.Equal(got, []string{"firing orange", "resolved orange"}) {
		t.Fatalf("notified %q", got)
	}
}

func TestBacklogHeldAtTheGatewayIsNotSilence(t *testing.T) {
	f := newField(t, "")
	f.run(time.Minute)
	// A slow link: the gateway's batches stop arriving, but it heartbeats
	// and says what it read.
	for i := 0; i < 12; i++ {
		f.now, f.mono = f.now.Add(10*time.Second), f.mono.Add(10*time.Second)
		var devs []telemetry.DeviceState
		for _, d := range farm {
			devs = append(devs, telemetry.DeviceState{ID: d.id, Interval: telemetry.Duration(interval), Health: "ok",
				Bus: d.bus, LastRead: f.now})
		}
		f.reg.ObserveState("farm", telemetry.State{State: telemetry.StateOnline, Time: f.now,
			Heartbeat: telemetry.Duration(heartbeat), Buffered: uint64(6 * i), Devices: devs}, false)
		if err := f.e.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	f.wantActive()
}

func TestUndecidedSilenceWaitsForTheGateway(t *testing.T) {
	f := newField(t, "")
	f.run(time.Minute)
	// All devices stop at once but the gateway still heartbeats: after a
	// heartbeat it is clear that each bus is down, not the gateway.
	f.run(35*time.Second, farmIDs()...)
	f.wantActive()
	f.run(time.Minute, farmIDs()...)
	f.wantActive("BusDown firing blue", "BusDown firing blue")
}

func farmIDs() []string {
	var out []string
	for _, d := range farm {
		out = append(out, d.id)
	}
	return out
}

func TestSameHazardPagesOnce(t *testing.T) {
	f := newField(t, `rules:
  - id: rain_3h
    kind: threshold
    standard: test
    input: {metric: soil_moisture}
    levels: [{severity: orange, op: ">=", set: 50}]
    labels: {alertname: Wet}
  - id: rain_12h
    kind: threshold
    standard: test
    input: {metric: soil_moisture, agg: max, window: 1h}
    levels: [{severity: blue, op: ">=", set: 40}]
    labels: {alertname: Wet}
`)
	b := &telemetry.Batch{Gateway: "farm", Site: "north", Readings: []telemetry.Reading{{Device: "soil-east", Metric: "soil_moisture", Value: 60, Time: f.now}}}
	if err := f.e.Observe(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got := f.sink.states(); !slices.Equal(got, []string{"firing orange"}) && !slices.Equal(got, []string{"firing blue muted", "firing orange"}) &&
		!slices.Equal(got, []string{"firing orange", "firing blue muted"}) {
		t.Fatalf("notified %q: one hazard, one page", got)
	}
	a := f.firing("Wet")
	if a.Severity != alert.Orange || a.Annotations["also"] != "rain_12h blue" {
		t.Fatalf("the page is %s with also=%q", a.Severity, a.Annotations["also"])
	}
}

// TestNoFalseSilenceWhenTheCloudStallsAtStart: paused before its first
// check, the cloud still notices the pause.
func TestNoFalseSilenceWhenTheCloudStallsAtStart(t *testing.T) {
	f := newField(t, "")
	f.poll()
	f.now = f.now.Add(30 * time.Second)
	f.mono = f.mono.Add(30 * time.Second)
	if err := f.e.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.run(30 * time.Second)
	f.wantActive()
	if h, _ := f.e.History(context.Background(), HistoryQuery{Gateway: "farm"}); len(h) != 0 {
		t.Fatalf("history %+v", h)
	}
}

// TestBusGoingDownDeviceByDeviceIsOneAlert: the devices on a cut bus were
// last read a few seconds apart, so they pass their allowance a few
// seconds apart, and the gateway says each fails as it finds out; the
// first silent one waits for the others instead of paging alone.
func TestBusGoingDownDeviceByDeviceIsOneAlert(t *testing.T) {
	f := newField(t, "")
	f.run(time.Minute)
	dtu := []string{"soil-east", "soil-west", "soil-orchard", "air-mast"}
	f.hung = true // polls by hand: the bus's devices stop answering one by one
	for i := range dtu {
		f.now, f.mono = f.now.Add(3*time.Second), f.mono.Add(3*time.Second)
		f.poll(dtu[:i+1]...)
		f.health[dtu[i]] = "failing"
		f.state()
	}
	f.hung = false
	f.run(2*time.Minute, dtu...)
	f.wantActive("BusDown firing blue")
	for _, a := range f.e.Alerts(Filter{State: "all"}) {
		if a.Labels["alertname"] == "DeviceSilent" {
			t.Fatalf("a device paged on its own: %+v", a.Labels)
		}
	}
}

// TestHungGatewayWithoutItsAlert: with GatewayOffline turned off, a hung
// gateway's devices are not left waiting for a cause that will never be
// raised: each is silent on its own.
func TestHungGatewayWithoutItsAlert(t *testing.T) {
	f := newFieldWith(t, "", func(o *Options) { o.GatewayOffline.Disabled = true })
	f.run(time.Minute)
	f.hung = true
	f.run(3 * time.Minute)
	if got := f.active(); len(got) != 2 || got[0] != "BusDown firing blue" {
		t.Fatalf("active %q; want a BusDown for each bus", got)
	}
}

// TestFiringSilenceOutlivesBlindSpells: a dead device's alert fires; a
// broker blip, a cloud pause and its gateway's return (a reconnect) neither
// resolve it nor page again.
func TestFiringSilenceOutlivesBlindSpells(t *testing.T) {
	f := newField(t, "")
	f.run(time.Minute)
	f.run(2*time.Minute, "soil-7in1")
	f.wantActive("DeviceSilent firing blue")
	f.intake = "lost its broker connection" // a 5 s blip
	f.run(5*time.Second, "soil-7in1")
	f.intake = ""
	f.run(30*time.Second, "soil-7in1")
	f.now, f.mono = f.now.Add(20*time.Second), f.mono.Add(20*time.Second) // paused
	f.run(30*time.Second, "soil-7in1")
	f.reg.ObserveState("farm", telemetry.State{State: telemetry.StateOffline, Time: f.now}, false) // a reconnect
	f.hung = true
	f.run(10*time.Second, "soil-7in1")
	if got := f.active(); !slices.Contains(got, "GatewayOffline pending none") {
		t.Fatalf("the reconnect was not seen: %q", got)
	}
	f.hung = false
	f.state()
	f.run(time.Minute, "soil-7in1")
	f.wantActive("DeviceSilent firing blue")
	if got := f.notified("DeviceSilent"); !slices.Equal(got, []string{"firing blue"}) {
		t.Fatalf("DeviceSilent notified %q: the device is still dead, and was paged once", got)
	}
}

// notified lists the states notified of alerts named name.
func (f *field) notified(name string) []string {
	f.sink.mu.Lock()
	defer f.sink.mu.Unlock()
	var out []string
	for _, a := range f.sink.got {
		if a.Labels["alertname"] == name {
			out = append(out, string(a.State)+" "+a.Severity.String())
		}
	}
	return out
}

// TestCutBusThenGatewayDies: the bus alert is not resolved by its gateway
// going down; the gateway's alert mutes it.
func TestCutBusThenGatewayDies(t *testing.T) {
	f := newField(t, "")
	f.run(time.Minute)
	dtu := []string{"soil-east", "soil-west", "soil-orchard", "air-mast"}
	f.run(2*time.Minute, dtu...)
	f.wantActive("BusDown firing blue")
	f.hung = true
	f.run(2 * time.Minute)
	f.wantActive("BusDown firing blue muted", "GatewayOffline firing orange")
	if got := f.sink.states(); slices.Contains(got, "resolved blue") {
		t.Fatalf("notified %q: the bus was resolved while cut", got)
	}
}

// TestBusSeverityConfigured: bus_down with a severity of its own fires in it.
func TestBusSeverityConfigured(t *testing.T) {
	f := newFieldWith(t, "", func(o *Options) { o.BusDown.Severity = alert.Yellow })
	f.run(time.Minute)
	f.run(2*time.Minute, "weather-mast", "soil-7in1")
	f.wantActive("BusDown firing yellow")
}

// TestGatewayWithoutHeartbeat: a gateway older than the heartbeat is judged
// on its last will only, not taken for hung between its state messages.
func TestGatewayWithoutHeartbeat(t *testing.T) {
	f := newField(t, "")
	f.reg.ObserveState("farm", telemetry.State{State: telemetry.StateOnline, Site: "north", Time: f.now}, false)
	f.hung = true
	f.run(5 * time.Minute)
	if got := f.active(); slices.Contains(got, "GatewayOffline firing orange") {
		t.Fatalf("a gateway that never promised a heartbeat was judged not responding: %q", got)
	}
	f.reg.ObserveState("farm", telemetry.State{State: telemetry.StateOffline, Time: f.now}, false)
	f.run(time.Minute)
	f.wantActive("GatewayOffline firing orange")
}

// TestStallingIntake: an intake that stalls 11 s in every 30 is the cloud's
// alert, and a dead device is still found in the time the cloud hears.
func TestStallingIntake(t *testing.T) {
	f := newFieldWith(t, "", func(o *Options) { o.CloudIntake.For = 30 * time.Second })
	f.run(time.Minute)
	for i := 0; i < 12; i++ {
		f.intake = "a batch has been in hand for 11s (store writes stalled)"
		f.run(11*time.Second, "soil-7in1")
		f.intake = ""
		f.run(19*time.Second, "soil-7in1")
	}
	f.wantActive("CloudIntakeDown firing orange", "DeviceSilent firing blue")
}

// TestRestartKeepsCauseMuting: a device alert muted under its gateway's
// alert stays muted through a restart of the cloud, though the first batch
// after the start comes before the engine has checked the field (and the
// intake is not yet connected).
func TestRestartKeepsCauseMuting(t *testing.T) {
	f := newFieldWith(t, "", func(o *Options) { o.Path = filepath.Join(t.TempDir(), "alerts.db") })
	f.run(time.Minute)
	f.run(2*time.Minute, "soil-7in1")
	f.hung = true
	f.run(2 * time.Minute)
	f.wantActive("DeviceSilent firing blue muted", "GatewayOffline firing orange")
	before := len(f.notified("DeviceSilent"))
	if err := f.e.Close(); err != nil {
		t.Fatal(err)
	}
	f.intake = "not connected to the broker"
	f.open()
	b := &telemetry.Batch{Gateway: "other", Site: "south", Readings: []telemetry.Reading{{Device: "d", Metric: "m", Value: 1, Time: f.now}}}
	if err := f.e.Observe(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	f.run(10*time.Second, "soil-7in1")
	if got := f.notified("DeviceSilent")[before:]; len(got) != 0 {
		t.Fatalf("after the restart the device's alert was notified %q", got)
	}
	if a := f.firing("DeviceSilent"); a.InhibitedBy == "" {
		t.Fatalf("after the restart the device's alert is not muted: %+v", a)
	}
}
