package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// drillHook records the generic webhook's notifications: each request's
// Idempotency-Key with the event's fingerprint, status and repeat flag.
type drillHook struct {
	mu   sync.Mutex
	got  []drillNote
	errs []string
}

type drillNote struct {
	key, fingerprint, status string
	repeat                   bool
}

func (h *drillHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var e struct {
		Key         string `json:"key"`
		Fingerprint string `json:"fingerprint"`
		Status      string `json:"status"`
		Repeat      bool   `json:"repeat"`
	}
	err := json.NewDecoder(r.Body).Decode(&e)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil || e.Key == "" || r.Header.Get("Idempotency-Key") != e.Key {
		h.errs = append(h.errs, fmt.Sprintf("bad notification (%v): key %q, header %q", err, e.Key, r.Header.Get("Idempotency-Key")))
		return
	}
	h.got = append(h.got, drillNote{e.Key, e.Fingerprint, e.Status, e.Repeat})
}

func (h *drillHook) notes() []drillNote {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]drillNote(nil), h.got...)
}

const drillGateway = `gateway:
  id: %s
  site: drill
uplink:
  brokers: [%s]
  batch_size: 50
  batch_delay: 200ms
  ack_timeout: 5s
  reconnect_max: 2s
  state_interval: 2s
buffer:
  dir: %s
  fsync: always
  keep_acked: %s
http:
  listen: %s
buses:
`

const drillBus = `  - name: %s
    type: tcp
    address: %s
    timeout: 1s
    retries: 0
    quarantine: {after: 100}
    devices:
      - {id: %s, profile: %s, unit: %d, interval: %s}
`

// drillGW is one gateway of the drill: its status address and its units.
type drillGW struct {
	id, http string
	proc     *proc
}

func (g *drillGW) status(t *testing.T) gatewayStatus {
	var st gatewayStatus
	if err := testenv.GetJSON("http://"+g.http+"/status", &st); err != nil {
		return gatewayStatus{}
	}
	return st
}

// TestRestoreDrill is the disaster-recovery drill: two gateway binaries
// with simulated sensors send to the cloud binary on embedded defaults; a
// backup is taken while everything runs; the gateways go on (and an early
// warning fires, notified by webhook); restore refuses the live cloud's
// data; the cloud is killed and its data directory destroyed; the backup
// is restored and the cloud started on it. The restored cloud asks each
// gateway to send again what it acknowledged after the backup, and the
// gateways send it from what they kept (keep_acked). In the end every
// reading the simulators served is stored, once, exactly as served; every
// sequence the gateways numbered is in the cloud's commit records, none
// lost; and the warning was notified under one idempotency key, never as
// a new notification.
func TestRestoreDrill(t *testing.T) { restoreDrill(t, true) }

// TestRestoreDrillWithoutWindow is the drill with keep_acked: 0s: what
// the gateways acknowledged after the backup is lost, and exactly that —
// each gateway reports it with one not_kept gap event, the restored cloud
// settles its record with it and counts what it lacks, and every other
// sequence is a reading or event stored, the readings as served.
func TestRestoreDrillWithoutWindow(t *testing.T) { restoreDrill(t, false) }

func restoreDrill(t *testing.T, keep bool) {
	keepAcked := "0s"
	if keep {
		keepAcked = "72h"
	}
	dir := t.TempDir()
	data, bak := filepath.Join(dir, "data"), filepath.Join(dir, "backup")
	hook := &drillHook{}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)
	secret := filepath.Join(dir, "hook.secret")
	if err := os.WriteFile(secret, []byte("drill-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := writeAlertConfig(t, dir, `rules:
  - id: drill_air_humid
    kind: threshold
    standard: "restore drill"
    input: {metric: air_humidity}
    labels: {alertname: DrillAirHumid}
    levels:
      - {severity: yellow, op: ">", set: 1, clear: 0.5}
`, `
  gateway_offline: {disabled: true}
  bus_down: {disabled: true}
  cloud_intake: {disabled: true}`, fmt.Sprintf(`
      - name: bureau
        webhook: {url: %s, secret_file: %s}`, hookSrv.URL, secret))
	cloudHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cloudArgs := []string{"run", "-c", cfgPath, "-http", cloudHTTP, "-mqtt-listen", mqttAddr, "-data", data}
	cloud := start(t, "fieldwatch-cloud", cloudArgs...)
	waitHealthy(t, cloudHTTP)

	// Three simulators, one unit each, so that a unit that does not answer
	// holds up no other: soil probes for each gateway, and an air sensor
	// that answers only from after the backup on.
	env := &sim.Environment{Seed: 16}
	rec := &served{}
	simSoilA, addrSoilA := startSim(t, rec, map[uint8]sim.Device{1: &sim.SoilProbe{Env: env, Probe: 0}})
	simAir, addrAir := startSim(t, rec, map[uint8]sim.Device{10: &sim.AirSensor{Env: env}})
	simSoilB, addrSoilB := startSim(t, rec, map[uint8]sim.Device{2: &sim.SoilProbe{Env: env, Probe: 1}})
	simAir.SetDead(10, true)

	gws := []*drillGW{{id: "drill-north"}, {id: "drill-south"}}
	buses := map[string]string{
		"drill-north": fmt.Sprintf(drillBus, "soil", addrSoilA, "soil-a", "renke/rs-ecth-n01", 1, "200ms") +
			fmt.Sprintf(drillBus, "air", addrAir, "air-1", "renke/rs-ws-n01-8", 10, "2s"),
		"drill-south": fmt.Sprintf(drillBus, "soil", addrSoilB, "soil-b", "renke/rs-ecth-n01", 2, "300ms"),
	}
	for _, g := range gws {
		gdir := filepath.Join(dir, g.id)
		g.http = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		cfg := filepath.Join(gdir, "gateway.yaml")
		os.MkdirAll(gdir, 0o755)
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(drillGateway, g.id, "tcp://"+mqttAddr, filepath.Join(gdir, "buffer"),
			keepAcked, g.http)+buses[g.id]), 0o644); err != nil {
			t.Fatal(err)
		}
		g.proc = start(t, "fieldwatch-gateway", "run", "-c", cfg)
	}
	acked := func(min map[string]uint64) func() bool {
		return func() bool {
			for _, g := range gws {
				if g.status(t).Buffer.AckedThrough < min[g.id] {
					return false
				}
			}
			return true
		}
	}
	testenv.Eventually(t, "both gateways acknowledged 30 items", 120*time.Second, acked(map[string]uint64{"drill-north": 30,
		"drill-south": 30}))

	// The backup, while everything runs.
	backup := start(t, "fieldwatch-cloud", "backup", "-c", cfgPath, "-data", data, "-to", bak)
	testenv.Eventually(t, "backup done", 120*time.Second, backup.Exited)
	if code := backup.ExitCode(); code != 0 {
		t.Fatalf("backup exited %d:\n%s", code, backup.Logs())
	}
	atBackup := map[string]uint64{}
	for _, g := range gws {
		atBackup[g.id] = g.status(t).Buffer.NextSeq + 40 // what was acknowledged after the backup is lost with the cloud
	}

	// After the backup: the air sensor answers, its warning fires and is
	// notified, and the gateways get 40 more items acknowledged.
	simAir.SetDead(10, false)
	testenv.Eventually(t, "the warning notified", 120*time.Second, func() bool { return len(hook.notes()) > 0 })
	testenv.Eventually(t, "40 more items acknowledged after the backup", 120*time.Second, acked(atBackup))

	// Restore refuses the running cloud's data directory.
	refused := start(t, "fieldwatch-cloud", "restore", "-from", bak, "-data", data)
	testenv.Eventually(t, "restore refused", 60*time.Second, refused.Exited)
	if code := refused.ExitCode(); code != 1 || !strings.Contains(refused.Logs(), "a cloud is running on this data directory") {
		t.Fatalf("restore over a running cloud: exit %d:\n%s", code, refused.Logs())
	}

	// The disaster.
	cloud.Stop(t, syscall.SIGKILL)
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	restore := start(t, "fieldwatch-cloud", "restore", "-from", bak, "-data", data)
	testenv.Eventually(t, "restore done", 120*time.Second, restore.Exited)
	if code := restore.ExitCode(); code != 0 || !strings.Contains(restore.Logs(), "restore complete") {
		t.Fatalf("restore exited %d:\n%s", code, restore.Logs())
	}
	t.Logf("restore said:\n%s", restore.Logs())
	cloud = start(t, "fieldwatch-cloud", cloudArgs...)
	waitHealthy(t, cloudHTTP)

	// Each gateway is asked to send again from its restored commit point,
	// and does, from what it kept — or reports what it did not keep.
	type uplinkStatus struct {
		Uplink struct {
			Rewound uint64 `json:"rewound"`
			NotKept uint64 `json:"not_kept"`
		} `json:"uplink"`
	}
	testenv.Eventually(t, "both gateways answered the request to send again", 120*time.Second, func() bool {
		for _, g := range gws {
			var st uplinkStatus
			if testenv.GetJSON("http://"+g.http+"/status", &st) != nil || (keep && st.Uplink.Rewound == 0) ||
				(!keep && st.Uplink.NotKept == 0) {
				return false
			}
		}
		return true
	})

	// Silence the sensors and let the gateways empty their buffers.
	simSoilA.SetDead(1, true)
	simAir.SetDead(10, true)
	simSoilB.SetDead(2, true)
	final := map[string]gatewayStatus{}
	testenv.Eventually(t, "every device failing and every buffer acknowledged", 180*time.Second, func() bool {
		for _, g := range gws {
			st := g.status(t)
			for _, d := range st.Devices {
				if d.Health != "failing" {
					return false
				}
			}
			if len(st.Devices) == 0 || st.Buffer.Readings != 0 || st.Buffer.AckedThrough != st.Buffer.NextSeq-1 {
				return false
			}
			final[g.id] = st
		}
		return true
	})

	// What the simulators served, scaled as the vendors' maps say …
	want := servedValues(rec, map[uint8]string{1: "drill-north/soil-a", 2: "drill-south/soil-b", 10: "drill-north/air-1"})
	// … is what the restored cloud holds, each once.
	got := map[string][]float64{}
	for _, g := range gws {
		resp, err := http.Get("http://" + cloudHTTP + "/api/v1/export?format=jsonl&from=-24h&station=" + g.id)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var row struct {
				Device, Metric string
				Value          float64
			}
			if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
				t.Fatalf("export line %q: %v", sc.Text(), err)
			}
			key := g.id + "/" + row.Device + "/" + row.Metric
			got[key] = append(got[key], row.Value)
		}
		resp.Body.Close()
		if sc.Err() != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("export of %s: %d, %v", g.id, resp.StatusCode, sc.Err())
		}
	}
	if len(got) != len(want) {
		t.Fatalf("the restored cloud has %d series, the simulators served %d: %v", len(got), len(want), keys(got))
	}
	total, served := 0, 0
	for key, w := range want {
		g := got[key]
		served += len(w)
		total += len(g)
		if keep {
			if !slices.Equal(g, w) {
				t.Fatalf("%s: the restored cloud has %d values, the simulators served %d; first difference at %d", key,
					len(g), len(w), firstDiff(g, w))
			}
			continue
		}
		// Without the window one run of what was served is missing: what
		// was acknowledged after the backup.
		p := firstDiff(g, w)
		if len(g) > len(w) || !slices.Equal(g[p:], w[len(w)-(len(g)-p):]) {
			t.Fatalf("%s: stored %d values, served %d: not what was served with one run left out", key, len(g), len(w))
		}
	}
	if !keep && total == served {
		t.Fatalf("nothing lost without keep_acked: %d readings stored of %d served", total, served)
	}
	// Every sequence the gateways numbered is a reading or event stored
	// (events: a dead unit's quarantine, should the machine be slow enough
	// for a hundred failed polls; without the window, each gateway's
	// not_kept gap), or one the restored cloud counted lost — none with
	// the window.
	m, err := testenv.Scrape("http://" + cloudHTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	lost := uint64(m["fieldwatch_ingest_not_kept_items_total"])
	var items, notKept uint64
	events := 0
	for _, g := range gws {
		items += final[g.id].Buffer.NextSeq - 1
		var st uplinkStatus
		if err := testenv.GetJSON("http://"+g.http+"/status", &st); err != nil {
			t.Fatal(err)
		}
		notKept += st.Uplink.NotKept
		var evs []struct {
			Kind   string             `json:"kind"`
			Attrs  map[string]string  `json:"attrs"`
			Values map[string]float64 `json:"values"`
		}
		if err := testenv.GetJSON("http://"+cloudHTTP+"/api/v1/events?limit=10000&from=-24h&station="+g.id, &evs); err != nil {
			t.Fatal(err)
		}
		var gapped uint64
		for _, e := range evs {
			if e.Kind == "gap" {
				if e.Attrs["reason"] != "not_kept" {
					t.Fatalf("%s: a gap event of another kind stored: %+v", g.id, e)
				}
				gapped += uint64(e.Values["count"])
			}
		}
		if gapped != st.Uplink.NotKept {
			t.Fatalf("%s: gap events count %d items not kept, its status %d", g.id, gapped, st.Uplink.NotKept)
		}
		events += len(evs)
	}
	if uint64(total+events)+lost != items {
		t.Fatalf("the gateways numbered %d items; %d readings and %d events are stored, %d counted lost", items, total,
			events, lost)
	}
	if m["fieldwatch_ingest_resend_requests_total"] == 0 || (keep && (lost != 0 || notKept != 0)) ||
		(!keep && (lost == 0 || lost > notKept)) {
		t.Fatalf("resend requests %v, the cloud counted %d lost, the gateways %d not kept", m["fieldwatch_ingest_resend_requests_total"],
			lost, notKept)
	}
	t.Logf("%d readings of %d served in %d series stored once; %d items lost (%d not kept by the gateways)", total,
		served, len(want), lost, notKept)

	// The warning that fired after the backup was judged again from the
	// resent readings, and its notification has the same idempotency key:
	// one notification per change, a redelivery at most, never a new one.
	notes := hook.notes()
	keysSeen := map[string]drillNote{}
	changes := map[string]string{}
	for _, n := range notes {
		if n.repeat {
			t.Fatalf("a repeat notification: %+v", n)
		}
		keysSeen[n.key] = n
		change := n.fingerprint + "/" + n.status
		if k, ok := changes[change]; ok && k != n.key {
			t.Fatalf("the change %s was notified under two keys, %s and %s", change, k, n.key)
		}
		changes[change] = n.key
	}
	if len(keysSeen) != 1 || len(hook.errs) != 0 {
		t.Fatalf("notifications %+v (errors %v); want one firing of the warning", notes, hook.errs)
	}
	t.Logf("%d notification requests, %d distinct (redeliveries carry the same Idempotency-Key)", len(notes), len(keysSeen))
	cloud.Stop(t, syscall.SIGTERM)
}

// firstDiff is the length of the common prefix of a and b.
func firstDiff(a, b []float64) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}
