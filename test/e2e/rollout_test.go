package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// rolloutView is what the test reads of GET /api/v1/rollouts/{id}.
type rolloutView struct {
	ID       string           `json:"id"`
	State    string           `json:"state"`
	Step     int              `json:"step"`
	Steps    int              `json:"steps"`
	Reason   string           `json:"reason"`
	Gateways []rolloutGateway `json:"gateways"`
	Events   []struct {
		By   string `json:"by"`
		What string `json:"what"`
	} `json:"events"`
}

type rolloutGateway struct {
	ID     string    `json:"id"`
	Step   int       `json:"step"`
	Status string    `json:"status"`
	SentAt time.Time `json:"sent_at"`
	DoneAt time.Time `json:"done_at"`
	Reason string    `json:"reason"`
}

// settled says no gateway of v waits for a verdict.
func (v rolloutView) settled() bool {
	return !slices.ContainsFunc(v.Gateways, func(g rolloutGateway) bool { return g.Status == "sent" || g.Status == "reverting" })
}

// TestRolloutJourney runs the real binaries — the cloud with its embedded
// broker and InfluxDB, API tokens, 21 gateway processes (distinct ids,
// data dirs and HTTP ports) sharing one simulated Modbus line of three
// units, polled every second — and rolls configs out with
// `fieldwatch-cloud rollout` to the 20 labelled county=laoshan,kind=river
// (the 21st, a buoy, is outside the group):
//
//   - (a) a poll-interval change, one file per gateway, to a 10 % canary
//     then two waves, paused after it started, the cloud restarted while
//     paused (it is still paused, at the same step), resumed: every gateway
//     of the group runs it, no wave started before the step before it
//     ended, none while paused, and the buoy was never sent it;
//   - (b) a config whose bus points at a port nobody answers (it
//     validates; it cannot poll) halts the rollout at the canary: the two
//     canaries roll back by themselves, the other 18 were never sent it;
//     then the operator rolls it back (the reverts signed at create
//     reach the two canaries, not the others);
//   - every item the canaries appended across apply, rollback and revert
//     is in InfluxDB exactly once (counted as the fault tests count), and
//     every action is audited with the token's name.
//
// The gateways' state_interval is 30 s, longer than any step takes: a
// gateway publishes its state when a config is kept, refused or rolled
// back, and the steps move on that, not on the heartbeat.
func TestRolloutJourney(t *testing.T) {
	dir := t.TempDir()
	db := testenv.StartInfluxDB(t)
	tokens := filepath.Join(dir, "api-tokens.yaml")
	out := cloudCmd(t, "token", "-name", "li.wei", "-role", "operator", "-file", tokens)
	tokenFile := filepath.Join(dir, "li.wei.token")
	if err := os.WriteFile(tokenFile, []byte(regexp.MustCompile(`fwt_\S+`).FindString(out)), 0o600); err != nil {
		t.Fatal(err)
	}
	cloudCfg := filepath.Join(dir, "cloud.yaml")
	if err := os.WriteFile(cloudCfg, []byte("http: {tokens_file: "+tokens+", anonymous: viewer}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &faultRig{t: t, db: db, cloudData: t.TempDir(), cloudHTTP: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	startCloud := func() {
		r.cloud = start(t, "fieldwatch-cloud", "run", "-c", cloudCfg, "-mqtt-listen", mqttAddr, "-influx-url", db.URL,
			"-influx-token-file", db.TokenFile, "-influx-bucket", db.Bucket, "-http", r.cloudHTTP, "-data", r.cloudData)
		waitHealthy(t, r.cloudHTTP)
	}
	startCloud()
	env := &sim.Environment{Seed: 17}
	r.sim, r.simAddr = startSim(t, &served{}, map[uint8]sim.Device{
		1: &sim.SoilProbe{Env: env, Probe: 0}, 2: &sim.SoilProbe{Env: env, Probe: 1}, 10: &sim.AirSensor{Env: env}})

	key := filepath.Join(dir, "fleet.key")
	pub := keygen(t, key)
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) // nothing listens there

	// Each gateway's config: the fault gateway's, polled every second,
	// with labels and a 30 s heartbeat; as the cloud sends it, interval
	// and bus as asked.
	conf := func(g *faultGateway, kind, interval, bus string) string {
		c := fmt.Sprintf(faultGatewayConfig, g.id, "tcp://"+mqttAddr, smallBatches, filepath.Join(filepath.Dir(g.cfg), "buffer"),
			"", g.http, bus)
		c = strings.Replace(c, "  site: faults\n", "  site: rollouts\n  labels: {county: laoshan, kind: "+kind+"}\n", 1)
		c = strings.Replace(c, "state_interval: 5s", "state_interval: 30s", 1)
		return strings.ReplaceAll(c, "interval: 100ms", "interval: "+interval)
	}
	write := func(path, text string) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var group []*faultGateway
	gws := map[string]*faultGateway{}
	for i := range 21 {
		id, kind := fmt.Sprintf("river-%02d", i), "river"
		if i == 20 {
			id, kind = "buoy-01", "buoy"
		}
		gdir := t.TempDir()
		g := &faultGateway{t: t, id: id, cfg: filepath.Join(gdir, "gateway.yaml"),
			http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
		write(g.cfg, conf(g, kind, "1s", r.simAddr)+fmt.Sprintf("fleet: {trusted_keys: [%q], grace: 8s}\n", pub))
		if kind == "river" {
			write(filepath.Join(dir, "v0", id+".yaml"), conf(g, kind, "1s", r.simAddr))
			write(filepath.Join(dir, "v1", id+".yaml"), conf(g, kind, "1500ms", r.simAddr))
			write(filepath.Join(dir, "v3", id+".yaml"), conf(g, kind, "1500ms", dead))
			group = append(group, g)
		}
		gws[id] = g
		g.start()
	}
	fleetOf := func(g *faultGateway) (s fleetStatus) {
		testenv.GetJSON("http://"+g.http+"/status", &s)
		return s
	}
	testenv.Eventually(t, "the cloud knows the 20 river gateways and what config they run", 90*time.Second, func() bool {
		var inv struct {
			Gateways []struct {
				ConfigVersion *uint64 `json:"config_version"`
			} `json:"gateways"`
		}
		testenv.GetJSON("http://"+r.cloudHTTP+"/api/v1/inventory?label=kind:river", &inv)
		n := 0
		for _, row := range inv.Gateways {
			if row.ConfigVersion != nil {
				n++
			}
		}
		return n == 20
	})
	for _, g := range group {
		testenv.Eventually(t, g.id+": every device ok", 60*time.Second, func() bool {
			s := fleetOf(g)
			return len(s.Devices) == 3 && s.allOK()
		})
	}

	api := "http://" + r.cloudHTTP
	rolloutCmd := func(args ...string) string {
		return cloudCmd(t, append([]string{"rollout", args[0], "-api", api, "-token-file", tokenFile}, args[1:]...)...)
	}
	create := func(version, configs, reverts string) string {
		out := rolloutCmd("create", "-group", "county=laoshan,kind=river", "-canary", "10%", "-waves", "2",
			"-step-timeout", "45s", "-version", version, "-config-dir", filepath.Join(dir, configs),
			"-revert-dir", filepath.Join(dir, reverts), "-key", key)
		id := regexp.MustCompile(`rollout (\S+) started`).FindStringSubmatch(out)
		if id == nil {
			t.Fatalf("rollout create said %q", out)
		}
		return id[1]
	}
	view := func(id string) (v rolloutView) {
		testenv.GetJSON(api+"/api/v1/rollouts/"+id, &v)
		return v
	}

	// (a) The canary, then two waves, with a pause.
	a := create("1", "v1", "v0")
	rolloutCmd("pause", a)
	var paused rolloutView
	testenv.Eventually(t, "the step under way at the pause ends", 90*time.Second, func() bool {
		paused = view(a)
		return paused.State == "paused" && paused.settled()
	})
	for _, g := range paused.Gateways {
		if g.Step >= paused.Step && g.Status != "waiting" {
			t.Errorf("paused with step %d next, yet %s of step %d is %s", paused.Step, g.ID, g.Step, g.Status)
		}
	}
	// The cloud restarted while the rollout is paused: it is still
	// paused at the same step, and goes on when resumed.
	logs := r.cloud.Logs()
	r.cloud.Stop(t, syscall.SIGTERM)
	startCloud()
	if v := view(a); v.State != "paused" || v.Step != paused.Step || len(v.Gateways) != 20 {
		t.Fatalf("(a) after the cloud's restart: %s at step %d with %d gateways; was paused at %d", v.State, v.Step,
			len(v.Gateways), paused.Step)
	}
	rolloutCmd("resume", a)
	var done rolloutView
	testenv.Eventually(t, "rollout (a) done", 120*time.Second, func() bool { done = view(a); return done.State == "done" })
	sizes := make([]int, done.Steps)
	endOf := make([]time.Time, done.Steps)
	for _, g := range done.Gateways {
		sizes[g.Step]++
		if g.Status != "ok" {
			t.Errorf("(a) %s: %s %s", g.ID, g.Status, g.Reason)
		}
		if g.DoneAt.After(endOf[g.Step]) {
			endOf[g.Step] = g.DoneAt
		}
	}
	if fmt.Sprint(sizes) != "[2 9 9]" {
		t.Errorf("(a) steps of %v; want a canary of 2 (10 %% of 20), then two waves of 9", sizes)
	}
	for _, g := range done.Gateways {
		if g.Step > 0 && g.SentAt.Before(endOf[g.Step-1]) {
			t.Errorf("(a) %s of step %d sent at %v, before step %d ended at %v", g.ID, g.Step, g.SentAt, g.Step-1, endOf[g.Step-1])
		}
	}
	for _, g := range group {
		s := fleetOf(g)
		if s.Fleet == nil || s.Fleet.Version != 1 || len(s.Devices) != 3 || s.Devices[0].Interval != "1.5s" {
			t.Errorf("(a) %s runs %+v", g.id, s)
		}
	}
	if s := fleetOf(gws["buoy-01"]); s.Fleet == nil || s.Fleet.Version != 0 || s.Fleet.Error != "" {
		t.Errorf("(a) the buoy, outside the group, was sent something: %+v", s.Fleet)
	}

	// (b) A config that cannot poll: halted at the canary.
	b := create("3", "v3", "v1")
	var halted rolloutView
	testenv.Eventually(t, "rollout (b) halted", 90*time.Second, func() bool {
		halted = view(b)
		return halted.State == "halted" && halted.settled()
	})
	// It halts at the first failure: the other canary may still be
	// under its check then (its verdict follows).
	if halted.Step != 0 || !regexp.MustCompile(`^canary: [12] of 2 gateways failed, more than the 0 allowed`).MatchString(halted.Reason) {
		t.Errorf("(b) halted at step %d: %s", halted.Step, halted.Reason)
	}
	var canaries []*faultGateway
	for _, g := range halted.Gateways {
		switch {
		case g.Step == 0:
			canaries = append(canaries, gws[g.ID])
			if g.Status != "failed" || !strings.Contains(g.Reason, "rolled back") || !strings.Contains(g.Reason, "no reading from") {
				t.Errorf("(b) canary %s: %s %s", g.ID, g.Status, g.Reason)
			}
		case g.Status != "waiting" || !g.SentAt.IsZero():
			t.Errorf("(b) %s of step %d: %s, sent at %v; want never sent", g.ID, g.Step, g.Status, g.SentAt)
		default:
			if s := fleetOf(gws[g.ID]); s.Fleet == nil || s.Fleet.Version != 1 || s.Fleet.Error != "" || len(s.Fleet.Refused) > 0 {
				t.Errorf("(b) %s, never sent version 3, reports %+v", g.ID, s.Fleet)
			}
		}
	}
	for _, g := range canaries {
		testenv.Eventually(t, g.id+": rolled back to version 1 by itself and polling", 60*time.Second, func() bool {
			s := fleetOf(g)
			return s.Fleet != nil && s.Fleet.Version == 1 && s.Fleet.Rollback != nil && s.Fleet.Rollback.From == 3 && s.allOK()
		})
	}
	// The operator's rollback: the reverts (version 4, v1's text) go to
	// the two canaries, which it touched, and nowhere else.
	rolloutCmd("rollback", b)
	var back rolloutView
	testenv.Eventually(t, "rollout (b) rolled back", 90*time.Second, func() bool { back = view(b); return back.State == "rolled_back" })
	for _, g := range back.Gateways {
		want := "waiting"
		if g.Step == 0 {
			want = "reverted"
		}
		if g.Status != want {
			t.Errorf("(b) after the rollback %s: %s %s; want %s", g.ID, g.Status, g.Reason, want)
		}
	}
	for _, g := range canaries {
		if s := fleetOf(g); s.Fleet == nil || s.Fleet.Version != 4 {
			t.Errorf("(b) canary %s after the rollback: %+v", g.id, s.Fleet)
		}
	}
	var who []string
	for _, e := range back.Events {
		who = append(who, e.By+": "+strings.Fields(e.What)[0])
	}
	if want := "li.wei: created: li.wei: started cloud: halted: li.wei: rolling cloud: rolled"; strings.Join(who, " ") != want {
		t.Errorf("(b) events %q; want %q", who, want)
	}
	lines := logs + r.cloud.Logs()
	for _, action := range []string{"rollout created", "rollout start", "rollout pause", "rollout resume", "rollout rollback"} {
		if !regexp.MustCompile(`"msg":"` + action + `".*"by":"li.wei"|msg="?` + action + `"? .*by=li.wei`).MatchString(lines) {
			t.Errorf("no audit line %q by li.wei in the cloud's log", action)
		}
	}

	for series, want := range map[string]float64{`fieldwatch_rollouts{state="done"}`: 1, `fieldwatch_rollouts{state="rolled_back"}`: 1,
		`fieldwatch_rollout_gateway_results_total{kind="config",result="failed"}`:   2,
		`fieldwatch_rollout_gateway_results_total{kind="config",result="reverted"}`: 2,
		`fieldwatch_rollout_actions_total{action="halt"}`:                           1} {
		if got := metric(t, api+"/metrics", series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}

	// Nothing lost from the canaries' buffers across apply, rollback and
	// revert, nothing stored twice.
	for _, g := range canaries {
		r.accountAll(g)
	}
}
