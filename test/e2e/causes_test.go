package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// The four defects of one-alert-per-cause, each on the real binaries with
// Mosquitto, the simulators and strict receivers, and the cloud on its
// default rule packs: a hung gateway is one alert, a stalled cloud raises
// none, a broker outage raises only the cloud's own, a drifting buoy one,
// and rules that mean the same thing are refused when they load.

// causeCloudArgs writes a cloud configuration on the default packs with
// quick built-in timers (extra alerting lines, YAML at two spaces) and the
// given receivers, and returns the cloud's HTTP address and arguments.
//
// A device is silent after ten of its intervals (5 s for the farm's
// devices), not the default three: a loaded machine that holds up a
// poll or two while the gateway still speaks must not make a device silent
// of its own, and every silence these tests cause (a hung gateway judged
// down after 7.5 s, a 30 s stall or outage) is still longer.
func causeCloudArgs(t *testing.T, mosqURL, extra, receivers string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cloud.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`alerting:
  gateway_offline: {for: 3s}
  device_silent: {after: 10}
%s
  notify:
    group_wait: 0s
    group_interval: 1s
    receivers:%s
`, extra, receivers)), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	return addr, []string{"run", "-c", cfg, "-mqtt-url", mosqURL, "-http", addr, "-data", filepath.Join(dir, "data")}
}

// causeGatewayConfig is a farm gateway with three devices on one Modbus
// TCP bus, polled twice a second; it says it is alive every 2 s, its broker
// notices it gone after 7.5 s, and it reconnects within a second.
const causeGatewayConfig = `gateway:
  id: farm-cause
  site: cause-site
uplink:
  brokers: [%s]
  batch_size: 50
  batch_delay: 200ms
  ack_timeout: 5s
  state_interval: 2s
  keepalive: 5s
  reconnect_max: 1s
buffer:
  dir: %s
  fsync: always
http:
  listen: %s
buses:
  - name: dtu
    type: tcp
    address: %s
    timeout: 300ms
    devices:
      - {id: soil-a, profile: renke/rs-ecth-n01, unit: 1, interval: 500ms}
      - {id: soil-b, profile: renke/rs-ecth-n01, unit: 2, interval: 500ms}
      - {id: air-1, profile: renke/rs-ws-n01-8, unit: 10, interval: 500ms}
`

// scene is a cause test's world: Mosquitto, a strict v4 receiver, the
// cloud binary on the default packs (extra alerting lines added), and the
// simulated farm, steady.
type scene struct {
	mosq      *testenv.Mosquitto
	hook      *hook
	cloud     *proc
	cloudHTTP string
	farm      *farm
}

func startScene(t *testing.T, extra string) *scene {
	t.Helper()
	sc := &scene{mosq: testenv.StartMosquitto(t)}
	h, hookURL := startHook(t)
	sc.hook = h
	var args []string
	sc.cloudHTTP, args = causeCloudArgs(t, sc.mosq.URL, extra, fmt.Sprintf(`
      - name: bureau
        alertmanager_webhook: {url: %s}`, hookURL))
	sc.cloud = start(t, "fieldwatch-cloud", args...)
	waitHealthy(t, sc.cloudHTTP)
	sc.farm = startFarm(t, sc.mosq.URL)
	sc.farm.waitSteady(t, sc.cloudHTTP)
	return sc
}

// farm is the simulated farm: the simulator, the gateway binary and its
// status address.
type farm struct {
	gw     *proc
	gwHTTP string
}

func startFarm(t *testing.T, mosqURL string) *farm {
	t.Helper()
	env := &sim.Environment{Seed: 7}
	_, simAddr := startSim(t, &served{}, map[uint8]sim.Device{
		1: &sim.SoilProbe{Env: env, Probe: 0}, 2: &sim.SoilProbe{Env: env, Probe: 1}, 10: &sim.AirSensor{Env: env},
	})
	dir := t.TempDir()
	f := &farm{gwHTTP: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(causeGatewayConfig, mosqURL, filepath.Join(dir, "buffer"), f.gwHTTP, simAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	f.gw = start(t, "fieldwatch-gateway", "run", "-c", cfg)
	t.Cleanup(func() { _ = f.gw.Cmd.Process.Signal(syscall.SIGCONT) }) // a stopped gateway must die on cleanup's SIGKILL too
	return f
}

// waitSteady waits until the cloud sees the farm online with its three
// devices reporting, and the gateway's buffer has been acknowledged.
func (f *farm) waitSteady(t *testing.T, cloudHTTP string) {
	t.Helper()
	testenv.Eventually(t, "the farm online and reporting", 60*time.Second, func() bool {
		var ss []station
		if testenv.GetJSON("http://"+cloudHTTP+"/api/v1/stations", &ss) != nil || len(ss) != 1 || ss[0].State != "online" ||
			len(ss[0].Devices) != 3 {
			return false
		}
		for _, d := range ss[0].Devices {
			if d.State != "ok" {
				return false
			}
		}
		return true
	})
	f.waitDrained(t)
}

// waitDrained waits until everything the gateway acquired is acknowledged
// (but a poll or two in flight), and it has acquired at least 100 items:
// the gateway has been running for a while.
func (f *farm) waitDrained(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, "the gateway's buffer acknowledged", 90*time.Second, func() bool {
		var st gatewayStatus
		return testenv.GetJSON("http://"+f.gwHTTP+"/status", &st) == nil && st.Connected && st.Buffer.NextSeq > 100 &&
			st.Buffer.AckedThrough+1 >= st.Buffer.NextSeq-5
	})
}

// alertView is what these tests read of /api/v1/alerts and its history.
type alertView struct {
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	State       string            `json:"state"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	InhibitedBy string            `json:"inhibited_by"`
}

func alertsOf(t *testing.T, cloudHTTP, state string) []alertView {
	t.Helper()
	var as []alertView
	if err := testenv.GetJSON("http://"+cloudHTTP+"/api/v1/alerts?state="+state, &as); err != nil {
		t.Fatal(err)
	}
	return as
}

// historyRules lists the rules in the history of one station.
func historyRules(t *testing.T, cloudHTTP, gw string) map[string]int {
	t.Helper()
	var h []struct {
		Rule string `json:"rule"`
		To   string `json:"to"`
	}
	if err := testenv.GetJSON("http://"+cloudHTTP+"/api/v1/alerts/history?station="+gw, &h); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, x := range h {
		out[x.Rule+" "+x.To]++
	}
	return out
}

// messages returns what the hook received: status and alertname of each
// alert of each message.
func (h *hook) summary() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, m := range h.msgs {
		for _, a := range m.Alerts {
			out = append(out, a.Status+" "+a.Labels["alertname"])
		}
	}
	return out
}

func (h *hook) errors() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.errs...)
}

// TestHungGatewayIsOneAlert stops the gateway process (SIGSTOP: its MQTT
// session stays up until the broker's keepalive runs out): its three
// silent devices are one GatewayOffline alert that names the cause and
// lists them, one notification at the strict webhook and one alert in a
// real Alertmanager; no device raises an alert of its own; the last will
// that follows changes nothing a receiver hears; and when the gateway runs
// again the one alert resolves.
func TestHungGatewayIsOneAlert(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	am := testenv.StartAlertmanager(t)
	h, hookURL := startHook(t)
	cloudHTTP, args := causeCloudArgs(t, mosq.URL, "", fmt.Sprintf(`
      - name: bureau
        alertmanager_webhook: {url: %s}
      - name: am
        alertmanager_api: {url: %s}`, hookURL, am.URL))
	start(t, "fieldwatch-cloud", args...)
	waitHealthy(t, cloudHTTP)
	f := startFarm(t, mosq.URL)
	f.waitSteady(t, cloudHTTP)
	if got := h.summary(); len(got) != 0 {
		t.Fatalf("notified before anything happened: %q", got)
	}

	hungAt := time.Now()
	if err := f.gw.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "a notification", 60*time.Second, func() bool { return h.count() > 0 })
	t.Logf("gateway hung → first notification: %v", time.Since(hungAt).Round(100*time.Millisecond))
	// The broker's keepalive runs out: the last will says offline.
	testenv.Eventually(t, "the station offline by its last will", 60*time.Second, func() bool {
		var ss []station
		return testenv.GetJSON("http://"+cloudHTTP+"/api/v1/stations", &ss) == nil && len(ss) == 1 && ss[0].State == "offline"
	})
	testenv.Eventually(t, "the alert in Alertmanager", 30*time.Second, func() bool {
		var got []json.RawMessage
		return testenv.GetJSON(am.URL+"/api/v2/alerts?active=true", &got) == nil && len(got) == 1
	})
	// Time enough for anything else to fire: the devices have been silent
	// for longer than their 5 s, the engine checks every 5 s.
	time.Sleep(6 * time.Second)

	if got := h.summary(); len(got) != 1 || got[0] != "firing GatewayOffline" {
		t.Fatalf("the webhook heard %q; want one firing GatewayOffline", got)
	}
	h.mu.Lock()
	a := h.msgs[0].Alerts[0]
	h.mu.Unlock()
	// Which of its two signs comes first — silence for two heartbeats, or
	// the broker's keepalive giving up — is a race; either names the cause.
	cause := a.Annotations["cause"]
	if a.Annotations["device_count"] != "3" || a.Annotations["devices"] != "air-1, soil-a, soil-b" ||
		!(strings.Contains(cause, "not responding") || strings.Contains(cause, "offline since")) || a.Annotations["runbook"] == "" ||
		!strings.Contains(a.Annotations["description_cn"], "网关") {
		t.Fatalf("the alert does not explain itself: %v", a.Annotations)
	}
	var amAlerts []struct {
		Labels map[string]string `json:"labels"`
	}
	if err := testenv.GetJSON(am.URL+"/api/v2/alerts?active=true", &amAlerts); err != nil || len(amAlerts) != 1 ||
		amAlerts[0].Labels["alertname"] != "GatewayOffline" {
		t.Fatalf("Alertmanager holds %+v (%v); want one GatewayOffline", amAlerts, err)
	}
	active := alertsOf(t, cloudHTTP, "all")
	if len(active) != 1 || active[0].Labels["alertname"] != "GatewayOffline" || active[0].State != "firing" {
		t.Fatalf("the cloud's alerts: %+v; want one firing GatewayOffline", active)
	}
	if !strings.Contains(active[0].Annotations["cause"], "offline since") {
		t.Fatalf("the cause does not follow the last will: %q", active[0].Annotations["cause"])
	}

	if err := f.gw.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the resolution", 60*time.Second, func() bool { return h.count() >= 2 })
	f.waitDrained(t)
	time.Sleep(3 * time.Second) // a device alert from the backlog, were there one, would come now
	if got := h.summary(); len(got) != 2 || got[1] != "resolved GatewayOffline" {
		t.Fatalf("after the gateway runs again the webhook heard %q", got)
	}
	if errs := h.errors(); len(errs) > 0 {
		t.Fatalf("the receiver refused: %v", errs)
	}
	for rule := range historyRules(t, cloudHTTP, "farm-cause") {
		if !strings.HasPrefix(rule, "gateway_offline ") {
			t.Fatalf("history has %q: one cause, one alert", rule)
		}
	}
}

// TestCloudStallRaisesNothing pauses the cloud (SIGSTOP) for 30 s while the
// gateway keeps polling and buffering, then lets it run: the gateway
// delivers everything and nothing is judged silent — no alert, not even a
// pending one, and no notification.
func TestCloudStallRaisesNothing(t *testing.T) {
	sc := startScene(t, "")
	h, cloud, cloudHTTP, f := sc.hook, sc.cloud, sc.cloudHTTP, sc.farm
	if err := cloud.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Second) // the stall
	if err := cloud.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	f.waitDrained(t)
	t.Logf("cloud resumed → gateway's buffer acknowledged: %v", time.Since(resumed).Round(100*time.Millisecond))
	time.Sleep(10 * time.Second) // two checks after it
	if got := h.summary(); len(got) != 0 {
		t.Fatalf("a stalled cloud notified %q", got)
	}
	if as := alertsOf(t, cloudHTTP, "all"); len(as) != 0 {
		t.Fatalf("a stalled cloud raised %+v", as)
	}
	if hist := historyRules(t, cloudHTTP, "farm-cause"); len(hist) != 0 {
		t.Fatalf("a stalled cloud left history %v", hist)
	}
}

// TestBrokerOutageIsTheCloudsAlertOnly stops Mosquitto for 30 s: the cloud
// raises the one connectivity alert docs/alerting.md promises,
// CloudIntakeDown, and resolves it when it hears the field again; the
// gateway, its devices and its buffered readings raise nothing.
func TestBrokerOutageIsTheCloudsAlertOnly(t *testing.T) {
	sc := startScene(t, "  cloud_intake: {for: 5s}")
	mosq, h, cloudHTTP, f := sc.mosq, sc.hook, sc.cloudHTTP, sc.farm
	mosq.Stop()
	time.Sleep(30 * time.Second) // the outage
	mosq.Start(t)
	testenv.Eventually(t, "the connectivity alert resolved", 90*time.Second, func() bool { return h.count() >= 2 })
	f.waitDrained(t)
	time.Sleep(10 * time.Second) // two checks after the gateway is back
	if got := h.summary(); len(got) != 2 || got[0] != "firing CloudIntakeDown" || got[1] != "resolved CloudIntakeDown" {
		t.Fatalf("a broker outage notified %q; want CloudIntakeDown firing, then resolved", got)
	}
	if as := alertsOf(t, cloudHTTP, "active"); len(as) != 0 {
		t.Fatalf("after the outage the cloud has %+v", as)
	}
	if hist := historyRules(t, cloudHTTP, "farm-cause"); len(hist) != 0 {
		t.Fatalf("the gateway's history after a broker outage: %v", hist)
	}
}

// TestMooringDriftPagesOnce drives a simulated buoy through a pseudo-terminal
// into the gateway binary: it drags its mooring 300 m and is brought back.
// The drift is one MooringDrift alert with one notification, resolved when
// the buoy is back on station.
func TestMooringDriftPagesOnce(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	h, hookURL := startHook(t)
	cloudHTTP, args := causeCloudArgs(t, mosq.URL, "", fmt.Sprintf(`
      - name: bureau
        alertmanager_webhook: {url: %s}`, hookURL))
	start(t, "fieldwatch-cloud", args...)
	waitHealthy(t, cloudHTTP)

	dir := t.TempDir()
	// The buoy drags its mooring once the gateway reads it, and is brought
	// back once the drift has paged: each step waits for what it follows,
	// however long the binaries take to start or to judge.
	var (
		mu      sync.Mutex
		adrift  bool
		setDrag = func(on bool) { mu.Lock(); adrift = on; mu.Unlock() }
	)
	buoy := &sim.BuoyStream{Env: sim.Environment{Seed: 3}, Lat: 35.95, Lon: 120.45, Met: "XDR", Seed: 9,
		Drift: func(time.Time) (float64, float64) {
			mu.Lock()
			defer mu.Unlock()
			if adrift {
				return 0, 300
			}
			return 0, 0
		}}
	port := sim.NewStreamPort(filepath.Join(dir, "buoy"), serialport.Mode{Baud: 9600}, time.Second, buoy.Next, nil)
	if err := port.Plug(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer port.Unplug(nil)
	gwHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`gateway: {id: buoy-cause, site: cause-bay, clock: ntp}
uplink: {brokers: [%s], batch_delay: 200ms, ack_timeout: 5s, state_interval: 2s}
buffer: {dir: %s, fsync: always}
http: {listen: %s}
streams:
  - id: buoy-1
    profile: generic/met-buoy-gmx500-awac
    port: %s
    baud: 9600
    mooring: {lat: 35.95, lon: 120.45, radius_m: 100}
`, mosq.URL, filepath.Join(dir, "buffer"), gwHTTP, port.Link)), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, "fieldwatch-gateway", "run", "-c", cfg)

	testenv.Eventually(t, "the gateway reading the buoy on station", 60*time.Second, func() bool {
		var st streamStatus
		return testenv.GetJSON("http://"+gwHTTP+"/status", &st) == nil && len(st.Streams) == 1 &&
			st.Streams[0].Connected && st.Streams[0].Frames > 0
	})
	setDrag(true)
	testenv.Eventually(t, "the drift notified", 60*time.Second, func() bool { return h.count() >= 1 })
	setDrag(false)
	testenv.Eventually(t, "back on station notified", 60*time.Second, func() bool { return h.count() >= 2 })
	time.Sleep(6 * time.Second) // anything else would come now
	if got := h.summary(); len(got) != 2 || got[0] != "firing MooringDrift" || got[1] != "resolved MooringDrift" {
		t.Fatalf("the drift notified %q; want one MooringDrift firing, then resolved", got)
	}
	h.mu.Lock()
	a := h.msgs[0].Alerts[0]
	h.mu.Unlock()
	if a.Labels["severity"] != "orange" || a.Labels["device"] != "buoy-1" || a.Annotations["value_text"] == "" ||
		a.Annotations["runbook"] == "" {
		t.Fatalf("drift alert %v %v", a.Labels, a.Annotations)
	}
	if errs := h.errors(); len(errs) > 0 {
		t.Fatalf("the receiver refused: %v", errs)
	}
}

// TestDuplicateRulesRefusedAtLoad starts the cloud with a rule file that
// copies a pack rule under another id: it refuses to start (exit 3, a
// configuration error) and names both rules' files and lines. A nodata rule and a tuning of a pack rule load,
// and the log says what each tunes.
func TestDuplicateRulesRefusedAtLoad(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(rules string) *proc {
		cfg := write("cloud.yaml", "alerting:\n  rules: "+rules+"\n")
		return start(t, "fieldwatch-cloud", "run", "-c", cfg, "-mqtt-url", mosq.URL, "-http",
			fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), "-data", t.TempDir())
	}
	dup := write("copy.yaml", `rules:
  - id: my_pond_oxygen
    kind: threshold
    standard: "GB 11607-89"
    select: {profile: [supmea/sup-do7013]}
    input: {metric: dissolved_oxygen}
    levels: [{severity: yellow, op: "<", set: 5}]
`)
	p := run(dup)
	if code := p.ExitCode(); code != 3 {
		t.Fatalf("the cloud exited %d with a copy of a pack rule; want 3, a configuration error", code)
	}
	for _, want := range []string{dup + ":2: rule my_pond_oxygen means the same as rule env_pond_do_low at packs/environment.yaml:",
		"tunes: env_pond_do_low, disabled: true"} {
		if !strings.Contains(p.Logs(), want) {
			t.Fatalf("the refusal does not say %q:\n%s", want, p.Logs())
		}
	}

	tuned := write("tuned.yaml", `rules:
  - tunes: env_pond_do_low
    overrides: [{site: pond-7, levels: {yellow: {set: 5, clear: 5.5}}}]
  - id: far_buoys_silent
    kind: nodata
    standard: "our duty rota"
    select: {site: [far-bay]}
    nodata: {timeout: 2h}
    levels: [{severity: yellow}]
`)
	p = run(tuned)
	testenv.Eventually(t, "the tunings logged", 30*time.Second, func() bool {
		l := p.Logs()
		return strings.Contains(l, "tunes rule env_pond_do_low") && strings.Contains(l, "nodata rule far_buoys_silent tunes the built-in DeviceSilent for site far-bay")
	})
	p.Stop(t, syscall.SIGTERM)
}
