package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestReleaseRolloutJourney runs the real binaries — the cloud on
// Mosquitto and InfluxDB, five gateway processes labelled kind=river and
// a sixth outside the group, each started through a symbolic link to its
// binary as the shipped unit starts it — and rolls gateway releases out
// with `fieldwatch-cloud rollout create -kind release`:
//
//   - (a) a release built in the test (the same code, another version
//     string) to a canary of one, then two waves: every gateway of the
//     group runs it, the one outside the group still runs the first;
//   - (b) a release whose binary exits at start (test/brokenrelease)
//     halts the rollout at the canary, which rolls back to the release
//     before by itself; the rest of the group is never sent it; the
//     operator's rollback publishes the revert (signed at create, naming
//     the release before) to the canary only;
//   - every item each gateway appended across all of it is in InfluxDB
//     exactly once.
func TestReleaseRolloutJourney(t *testing.T) {
	if runtime.GOARCH == "arm" {
		t.Skip("the test names its target linux/" + runtime.GOARCH)
	}
	target := runtime.GOOS + "/" + runtime.GOARCH
	r := newFaultRig(t)
	dir := t.TempDir()
	bin := buildReleases(t, dir)
	key := filepath.Join(dir, "fleet.key")
	pub := keygen(t, key)

	const grace = 20 * time.Second
	var group []*faultGateway
	all := map[string]*faultGateway{}
	for i := range 6 {
		id, kind := fmt.Sprintf("river-%02d", i), "river"
		if i == 5 {
			id, kind = "buoy-01", "buoy"
		}
		gdir := t.TempDir()
		link := filepath.Join(gdir, "bin", "fieldwatch-gateway")
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(bin[v1], link); err != nil {
			t.Fatal(err)
		}
		g := &faultGateway{t: t, id: id, cfg: filepath.Join(gdir, "gateway.yaml"),
			http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
		c := fmt.Sprintf(faultGatewayConfig, id, r.mosq.URL, smallBatches, filepath.Join(gdir, "buffer"), "", g.http, r.simAddr)
		c = strings.Replace(c, "  site: faults\n", "  site: rollouts\n  labels: {county: laoshan, kind: "+kind+"}\n", 1)
		c = strings.ReplaceAll(c, "interval: 100ms", "interval: 500ms")
		c += fmt.Sprintf("fleet: {trusted_keys: [%q], grace: %v}\n", pub, grace)
		if err := os.WriteFile(g.cfg, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		g.p = testenv.StartBinary(t, link, "run", "-c", g.cfg)
		if kind == "river" {
			group = append(group, g)
		}
		all[id] = g
	}
	r.sensors(true)
	status := func(g *faultGateway) (s updateStatus) {
		testenv.GetJSON("http://"+g.http+"/status", &s)
		return s
	}
	api := "http://" + r.cloudHTTP
	testenv.Eventually(t, "the cloud knows the group and what each runs", 90*time.Second, func() bool {
		var inv struct {
			Gateways []struct {
				Version string `json:"version"`
			} `json:"gateways"`
		}
		testenv.GetJSON(api+"/api/v1/inventory?label=kind:river", &inv)
		n := 0
		for _, row := range inv.Gateways {
			if row.Version == v1 {
				n++
			}
		}
		return n == len(group)
	})
	create := func(serial, ver, revertVer, canary string) string {
		out := cloudCmd(t, "rollout", "create", "-api", api, "-kind", "release", "-group", "county=laoshan,kind=river",
			"-canary", canary, "-waves", "2", "-step-timeout", "2m", "-version", serial, "-key", key,
			"-release", ver, "-artifact", target+"="+bin[ver], "-revert-release", revertVer, "-revert-artifact", target+"="+bin[revertVer])
		id := regexp.MustCompile(`rollout (\S+) started: release `).FindStringSubmatch(out)
		if id == nil {
			t.Fatalf("rollout create said %q", out)
		}
		return id[1]
	}
	view := func(id string) (v rolloutView) {
		testenv.GetJSON(api+"/api/v1/rollouts/"+id, &v)
		return v
	}

	// (a) v2 to a canary of one, then two waves of two.
	a := create("1", v2, v1, "1")
	var done rolloutView
	testenv.Eventually(t, "release rollout (a) done", 4*time.Minute, func() bool {
		done = view(a)
		return done.State == "done" || done.State == "halted"
	})
	sizes := make([]int, done.Steps)
	for _, g := range done.Gateways {
		sizes[g.Step]++
		if g.Status != "ok" {
			t.Errorf("(a) %s: %s %s", g.ID, g.Status, g.Reason)
		}
	}
	if done.State != "done" || fmt.Sprint(sizes) != "[1 2 2]" {
		t.Fatalf("(a) %s (%s) in steps of %v; want done in a canary of 1 and two waves of 2", done.State, done.Reason, sizes)
	}
	for _, g := range group {
		if s := status(g); s.Version != v2 || s.Update == nil || s.Update.Previous != v1 || s.Update.Serial != 1 {
			t.Errorf("(a) %s runs %s, update %+v", g.id, s.Version, s.Update)
		}
	}
	if s := status(all["buoy-01"]); s.Version != v1 || s.Update == nil || s.Update.Serial != 0 {
		t.Errorf("(a) the buoy, outside the group, runs %s, update %+v", s.Version, s.Update)
	}

	// (b) A release that exits at start: halted at the canary, which
	// rolls back by itself; the others never sent it.
	b := create("3", broken, v2, "1")
	var halted rolloutView
	testenv.Eventually(t, "release rollout (b) halted", grace+2*time.Minute, func() bool {
		halted = view(b)
		return halted.State == "halted" && halted.settled()
	})
	var canary *faultGateway
	for _, g := range halted.Gateways {
		switch {
		case g.Step == 0:
			canary = all[g.ID]
			if g.Status != "failed" || !strings.Contains(g.Reason, "rolled back") {
				t.Errorf("(b) canary %s: %s %s", g.ID, g.Status, g.Reason)
			}
		case g.Status != "waiting" || !g.SentAt.IsZero():
			t.Errorf("(b) %s of step %d: %s, sent at %v; want never sent", g.ID, g.Step, g.Status, g.SentAt)
		default:
			if s := status(all[g.ID]); s.Version != v2 || s.Update.Serial != 1 || s.Update.Rollback != nil {
				t.Errorf("(b) %s, never sent serial 3, runs %s, update %+v", g.ID, s.Version, s.Update)
			}
		}
	}
	if canary == nil {
		t.Fatalf("(b) no canary in %+v", halted.Gateways)
	}
	if s := status(canary); s.Version != v2 || s.Update.Rollback == nil || s.Update.Rollback.From != broken || canary.p.Exited() {
		t.Fatalf("(b) canary %s after the halt runs %s, update %+v", canary.id, s.Version, s.Update)
	}
	// The operator's rollback: the revert (serial 4, naming v2) goes to
	// the canary, which runs v2 already, and nowhere else.
	cloudCmd(t, "rollout", "rollback", "-api", api, b)
	var back rolloutView
	testenv.Eventually(t, "release rollout (b) rolled back", 2*time.Minute, func() bool {
		back = view(b)
		return back.State == "rolled_back"
	})
	for _, g := range back.Gateways {
		want := "waiting"
		if g.Step == 0 {
			want = "reverted"
		}
		if g.Status != want {
			t.Errorf("(b) after the rollback %s: %s %s; want %s", g.ID, g.Status, g.Reason, want)
		}
	}
	if s := status(canary); s.Version != v2 || s.Update.Serial != 4 {
		t.Errorf("(b) canary %s after the rollback runs %s, update %+v; want %s, serial 4", canary.id, s.Version, s.Update, v2)
	}

	// Every gateway still polls and sends; nothing lost, nothing stored
	// twice, across every hand-over (accounting stops the sensors).
	for _, g := range all {
		if gs, ok := g.status(); ok {
			g.waitAcked(gs.Buffer.NextSeq + 10)
		}
	}
	for _, g := range all {
		r.accountAll(g)
	}
}
