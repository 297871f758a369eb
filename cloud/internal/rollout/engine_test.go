package rollout

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// fakeKind's items are "gateway:version"; a gateway published version v
// reports it healthy unless bad holds the gateway (then Bad) or silent
// does (then nothing).
type fakeKind struct {
	mu          sync.Mutex
	published   []string // gateway:version, in order
	running     map[string]uint64
	bad, silent map[string]bool
	failPublish bool
	onPublish   func() // called unlocked, before an item is taken
}

func newFakeKind() *fakeKind {
	return &fakeKind{running: map[string]uint64{}, bad: map[string]bool{}, silent: map[string]bool{}}
}

func (k *fakeKind) Check(gw string, item []byte) (uint64, error) {
	g, v, ok := strings.Cut(string(item), ":")
	n, err := strconv.ParseUint(v, 10, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("malformed %q", item)
	}
	if g != gw {
		return 0, fmt.Errorf("addressed to %q", g)
	}
	return n, nil
}

func (k *fakeKind) Publish(gw string, item []byte) error {
	if f := k.onPublish; f != nil {
		k.onPublish = nil
		f()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failPublish {
		return fmt.Errorf("broker down")
	}
	k.published = append(k.published, string(item))
	_, v, _ := strings.Cut(string(item), ":")
	n, _ := strconv.ParseUint(v, 10, 64)
	if !k.silent[gw] {
		k.running[gw] = n
	}
	return nil
}

func (k *fakeKind) Observe(gw string, v uint64, _ []byte) (Outcome, string, uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := k.running[gw]
	switch {
	case r == v && k.bad[gw] && v%2 == 1: // the item fails, its revert (even) does not
		return Bad, "rolled back: no reading from soil-1", r
	case r == v:
		return Healthy, "", r
	}
	return Pending, "", r
}

func (k *fakeKind) sent() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.published)
}

type fakeFleet map[string]map[string]string // gateway → labels

func (f fakeFleet) Select(labels map[string]string) (ids, unknown []string) {
	keys := map[string]bool{}
	for _, l := range f {
		for k := range l {
			keys[k] = true
		}
	}
	for k := range labels {
		if !keys[k] {
			unknown = append(unknown, k)
		}
	}
	for gw, l := range f {
		match := true
		for k, v := range labels {
			match = match && l[k] == v
		}
		if match {
			ids = append(ids, gw)
		}
	}
	slices.Sort(ids)
	return ids, unknown
}

func fleetOf(n int, labels map[string]string) fakeFleet {
	f := fakeFleet{}
	for _, id := range ids(n) {
		f[id] = labels
	}
	return f
}

type rig struct {
	t    *testing.T
	e    *Engine
	kind *fakeKind
	now  time.Time
	path string
}

func newRig(t *testing.T, f Fleet, path string) *rig {
	r := &rig{t: t, kind: newFakeKind(), now: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC), path: path}
	r.open(f)
	return r
}

func (r *rig) open(f Fleet) {
	e, err := New(Options{Path: r.path, Kinds: map[string]Kind{"config": r.kind}, Fleet: f,
		Now: func() time.Time { return r.now }})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { e.Close() })
	r.e = e
}

// create makes and starts a rollout with every item uploaded.
func (r *rig) create(spec Spec) *Rollout {
	r.t.Helper()
	ro, err := r.e.Create(spec, "li.wei")
	if err != nil {
		r.t.Fatal(err)
	}
	for _, g := range ro.Gateways {
		if _, err := r.e.Upload(ro.ID, g.ID, "item", fmt.Appendf(nil, "%s:%d", g.ID, spec.Version), "li.wei"); err != nil {
			r.t.Fatal(err)
		}
		if _, err := r.e.Upload(ro.ID, g.ID, "revert", fmt.Appendf(nil, "%s:%d", g.ID, spec.Version+1), "li.wei"); err != nil {
			r.t.Fatal(err)
		}
	}
	if _, err := r.e.Start(ro.ID, "li.wei"); err != nil {
		r.t.Fatal(err)
	}
	return ro
}

func (r *rig) get(id string) *Rollout {
	ro, ok := r.e.Get(id)
	if !ok {
		r.t.Fatalf("no rollout %s", id)
	}
	return ro
}

func (r *rig) tick() { r.now = r.now.Add(time.Second); r.e.Tick() }

func byStatus(ro *Rollout) map[Status]int {
	out := map[Status]int{}
	for _, g := range ro.Gateways {
		out[g.Status]++
	}
	return out
}

func inStep(ro *Rollout, step int) []string {
	var out []string
	for _, g := range ro.Gateways {
		if g.Step == step {
			out = append(out, g.ID)
		}
	}
	return out
}

var river = map[string]string{"county": "laoshan", "kind": "river"}

func TestRolloutSteps(t *testing.T) {
	r := newRig(t, fleetOf(20, river), "")
	ro := r.create(Spec{Kind: "config", Selector: "county=laoshan", Canary: "10%", Waves: 2, Version: 3})
	if ro.Steps != 3 || len(inStep(ro, 0)) != 2 || len(inStep(ro, 1)) != 9 || len(inStep(ro, 2)) != 9 {
		t.Fatalf("planned %d steps: %v / %v / %v", ro.Steps, inStep(ro, 0), inStep(ro, 1), inStep(ro, 2))
	}
	r.tick() // the canary is sent, and reports healthy at once
	if got := len(r.kind.sent()); got != 2 {
		t.Fatalf("after the first tick %d items sent: %v", got, r.kind.sent())
	}
	for _, s := range r.kind.sent() {
		if !slices.Contains(inStep(ro, 0), strings.Split(s, ":")[0]) {
			t.Errorf("%s sent in the canary step", s)
		}
	}
	for range 3 {
		r.tick()
	}
	got := r.get(ro.ID)
	if got.State != Done || byStatus(got)[OK] != 20 || len(r.kind.sent()) != 20 {
		t.Fatalf("state %s, %v, %d sent; want done, 20 ok", got.State, byStatus(got), len(r.kind.sent()))
	}
	if !strings.Contains(got.Events[len(got.Events)-1].What, "rollout done") {
		t.Errorf("last event %+v", got.Events[len(got.Events)-1])
	}
}

func TestHaltAtCanary(t *testing.T) {
	r := newRig(t, fleetOf(20, river), "")
	ro := r.create(Spec{Kind: "config", Selector: "county=laoshan,kind=river", Canary: "10%", Waves: 2, Version: 5})
	for _, gw := range inStep(ro, 0) {
		r.kind.bad[gw] = true
	}
	for range 5 {
		r.tick()
	}
	got := r.get(ro.ID)
	if got.State != Halted || got.Step != 0 || byStatus(got)[Failed] != 2 || byStatus(got)[Waiting] != 18 {
		t.Fatalf("state %s at step %d, %v; want halted at the canary, 2 failed, 18 waiting", got.State, got.Step, byStatus(got))
	}
	if len(r.kind.sent()) != 2 {
		t.Errorf("sent %v; only the canary should have been", r.kind.sent())
	}
	if !strings.Contains(got.Reason, "canary: 2 of 2 gateways failed, more than the 0 allowed") {
		t.Errorf("reason %q", got.Reason)
	}
	if g := got.Gateways[0]; !strings.Contains(g.Reason, "rolled back: no reading") {
		t.Errorf("gateway %+v", g)
	}
}

func TestThresholds(t *testing.T) {
	for _, c := range []struct {
		name     string
		maxFail  string
		bad      int // failing gateways in wave 1 (of 9)
		want     State
		wantStep int
	}{
		{"count tolerated", "2", 2, Done, 3},
		{"count passed", "2", 3, Halted, 1},
		{"share tolerated", "25%", 2, Done, 3}, // 25% of 9 is 2
		{"share passed", "25%", 3, Halted, 1},
		{"default: any failure", "", 1, Halted, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, fleetOf(20, river), "")
			ro := r.create(Spec{Kind: "config", Selector: "kind=river", Canary: "2", Waves: 2, Version: 1, MaxFailures: c.maxFail})
			for _, gw := range inStep(ro, 1)[:c.bad] {
				r.kind.bad[gw] = true
			}
			for range 6 {
				r.tick()
			}
			got := r.get(ro.ID)
			if got.State != c.want || got.Step != c.wantStep {
				t.Fatalf("state %s at step %d (%s); want %s at %d", got.State, got.Step, got.Reason, c.want, c.wantStep)
			}
		})
	}
}

func TestStepTimeout(t *testing.T) {
	r := newRig(t, fleetOf(20, river), "")
	ro := r.create(Spec{Kind: "config", Selector: "kind=river", Canary: "10%", Waves: 2, Version: 1, MaxFailures: "1",
		StepTimeout: telemetry.Duration(30 * time.Second)})
	r.kind.silent[inStep(ro, 0)[0]] = true
	r.tick()
	r.tick()
	if got := r.get(ro.ID); got.Step != 0 || got.State != Running {
		t.Fatalf("the canary went on without its silent gateway: step %d, %s", got.Step, got.State)
	}
	r.now = r.now.Add(31 * time.Second)
	r.tick()
	got := r.get(ro.ID)
	if got.Step != 1 || byStatus(got)[Failed] != 1 || !strings.Contains(got.Gateways[0].Reason+got.Gateways[1].Reason, "within 30s") {
		t.Fatalf("after the timeout: step %d, %v, %+v", got.Step, byStatus(got), got.Gateways[:2])
	}
}

func TestPauseResumeRollback(t *testing.T) {
	r := newRig(t, fleetOf(20, river), "")
	ro := r.create(Spec{Kind: "config", Selector: "kind=river", Canary: "10%", Waves: 2, Version: 7})
	for _, gw := range inStep(ro, 0) {
		r.kind.silent[gw] = true
	}
	r.tick() // the canary is sent; it reports nothing yet
	if _, err := r.e.Pause(ro.ID, "li.wei"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.e.Pause(ro.ID, "li.wei"); err == nil {
		t.Error("paused twice")
	}
	for _, gw := range inStep(ro, 0) { // the canary runs it now
		r.kind.silent[gw] = false
		r.kind.running[gw] = 7
	}
	for range 3 {
		r.tick()
	}
	got := r.get(ro.ID)
	if got.State != Paused || got.Step != 1 || byStatus(got)[OK] != 2 || len(r.kind.sent()) != 2 {
		t.Fatalf("paused: %s at step %d, %v, sent %v; want the canary done and no wave sent", got.State, got.Step, byStatus(got), r.kind.sent())
	}
	if _, err := r.e.Resume(ro.ID, "zhang.min"); err != nil {
		t.Fatal(err)
	}
	r.tick() // wave 1 sent and healthy
	if got := r.get(ro.ID); got.Step != 2 || byStatus(got)[OK] != 11 {
		t.Fatalf("resumed: step %d, %v", got.Step, byStatus(got))
	}
	if _, err := r.e.Rollback(ro.ID, "zhang.min"); err != nil {
		t.Fatal(err)
	}
	before := len(r.kind.sent())
	r.tick()
	r.tick()
	got = r.get(ro.ID)
	if got.State != RolledBack || byStatus(got)[Reverted] != 11 || byStatus(got)[Waiting] != 9 {
		t.Fatalf("rolled back: %s, %v", got.State, byStatus(got))
	}
	reverts := r.kind.sent()[before:]
	if len(reverts) != 11 || !strings.HasSuffix(reverts[0], ":8") {
		t.Errorf("reverts sent %v; want the 11 touched gateways at version 8", reverts)
	}
	var by []string
	for _, ev := range got.Events {
		by = append(by, ev.By+": "+ev.What)
	}
	want := []string{"li.wei: created", "li.wei: started", "li.wei: paused", "cloud: canary done", "zhang.min: resumed",
		"cloud: wave 1 done", "zhang.min: rolling back 11", "cloud: rolled back"}
	if len(by) != len(want) {
		t.Fatalf("events %q", by)
	}
	for i := range want {
		if !strings.HasPrefix(by[i], want[i]) {
			t.Errorf("event %d: %q; want %q…", i, by[i], want[i])
		}
	}
	if _, err := r.e.Resume(ro.ID, "li.wei"); err == nil {
		t.Error("a rolled back rollout resumed")
	}
}

func TestRefusals(t *testing.T) {
	f := fleetOf(6, river)
	f["buoy-1"] = map[string]string{"county": "laoshan", "kind": "buoy"}
	r := newRig(t, f, "")
	first, err := r.e.Create(Spec{Kind: "config", Selector: "kind=river", Canary: "1", Waves: 1, Version: 4}, "li.wei")
	if err != nil {
		t.Fatal(err)
	}
	refused := func(spec Spec, reason, msg string) {
		t.Helper()
		_, err := r.e.Create(spec, "li.wei")
		re, ok := IsRefusal(err)
		if !ok || re.Reason != reason || !strings.Contains(re.Msg, msg) {
			t.Errorf("%+v: got %v; want %s: …%s…", spec, err, reason, msg)
		}
	}
	ok := Spec{Kind: "config", Selector: "kind=buoy", Canary: "1", Waves: 1, Version: 9}
	with := func(change func(*Spec)) Spec { s := ok; change(&s); return s }
	refused(with(func(s *Spec) { s.Kind = "firmware" }), "unknown_kind", `"firmware" is not one of config`)
	refused(with(func(s *Spec) { s.Selector = "county" }), "bad_selector", "not key=value")
	refused(with(func(s *Spec) { s.Selector = "river=yes" }), "unknown_labels", "no gateway has the label river")
	refused(with(func(s *Spec) { s.Selector = "kind=lake" }), "unknown_labels", "no gateway has the labels kind=lake")
	refused(with(func(s *Spec) { s.Canary = "0%" }), "bad_canary", "at least 1")
	refused(with(func(s *Spec) { s.Waves = 0 }), "bad_waves", "outside 1..100")
	refused(with(func(s *Spec) { s.MaxFailures = "lots" }), "bad_max_failures", "neither a count")
	refused(with(func(s *Spec) { s.Version = 0 }), "bad_version", "from 1")
	refused(with(func(s *Spec) { s.Selector = "county=laoshan" }), Conflict, "is in rollout "+first.ID)
	r.kind.running["buoy-1"] = 9
	refused(ok, "old_version", "gateway buoy-1 has seen config version 9")

	g := first.Gateways[0].ID
	upload := func(gw, which, data, reason string) {
		t.Helper()
		_, err := r.e.Upload(first.ID, gw, which, []byte(data), "li.wei")
		if re, ok := IsRefusal(err); !ok || re.Reason != reason {
			t.Errorf("upload %s %s %q: %v; want %s", gw, which, data, err, reason)
		}
	}
	upload("buoy-1", "item", "buoy-1:4", "other_gateway")
	upload(g, "item", "gw-99:4", "bad_item")
	upload(g, "revert", g+":4", "bad_item")
	upload(g, "item", "junk", "bad_item")
	upload(g, "firmware", g+":4", NotFound)
	if _, err := r.e.Upload(first.ID, g, "item", []byte(g+":4"), "li.wei"); err != nil {
		t.Fatal(err)
	}
	if gw, err := r.e.Upload(first.ID, g, "revert", []byte(g+":5"), "li.wei"); err != nil || !gw.Uploaded {
		t.Fatal(gw, err)
	}
	_, err = r.e.Start(first.ID, "li.wei")
	if re, ok := IsRefusal(err); !ok || re.Reason != "missing_items" || !strings.Contains(re.Msg, "5 gateways") {
		t.Errorf("started without every item: %v", err)
	}
	if _, err := r.e.Rollback(first.ID, "li.wei"); err == nil {
		t.Error("a draft rolled back")
	}
	if _, err := r.e.Cancel(first.ID, "li.wei"); err != nil {
		t.Fatal(err)
	}
	// Its gateways are free again.
	if _, err := r.e.Create(with(func(s *Spec) { s.Selector = "kind=river" }), "li.wei"); err != nil {
		t.Errorf("after the draft was cancelled: %v", err)
	}
}

// TestResumeAfterRestart stops the engine mid-rollout (the canary sent and
// healthy, wave 1 sent) and opens it again on the same file: the rollout
// goes on from where it was, sending nothing twice, and finishes.
func TestResumeAfterRestart(t *testing.T) {
	f := fleetOf(20, river)
	r := newRig(t, f, filepath.Join(t.TempDir(), "rollouts.db"))
	ro := r.create(Spec{Kind: "config", Selector: "kind=river", Canary: "10%", Waves: 2, Version: 2})
	r.tick() // the canary, sent and healthy at once
	r.tick() // wave 1
	if got := r.get(ro.ID); got.Step != 2 || byStatus(got)[OK] != 11 || byStatus(got)[Waiting] != 9 {
		t.Fatalf("before the restart: step %d, %v", got.Step, byStatus(got))
	}
	sent := r.kind.sent()
	r.e.Close()

	kind := r.kind
	r.open(f)
	r.kind = kind
	got := r.get(ro.ID)
	if got.State != Running || got.Step != 2 || len(got.Events) == 0 || got.CreatedBy != "li.wei" {
		t.Fatalf("after the restart: %s at step %d", got.State, got.Step)
	}
	for range 4 {
		r.tick()
	}
	got = r.get(ro.ID)
	if got.State != Done || byStatus(got)[OK] != 20 {
		t.Fatalf("finished as %s, %v", got.State, byStatus(got))
	}
	all := r.kind.sent()
	if len(all) != 20 || !slices.Equal(all[:len(sent)], sent) {
		t.Errorf("sent %d items in all (%d before the restart); want each of the 20 once", len(all), len(sent))
	}
	// Its items were kept too: a rollback after the restart has the reverts.
	if _, err := r.e.Rollback(ro.ID, "li.wei"); err != nil {
		t.Fatal(err)
	}
	r.tick()
	r.tick()
	if got := r.get(ro.ID); got.State != RolledBack || byStatus(got)[Reverted] != 20 {
		t.Fatalf("rollback after the restart: %s, %v", got.State, byStatus(got))
	}
}

// TestPublishRetried: a publish that fails is tried again at the next
// tick, and the step timeout counts from the publish that worked.
func TestPublishRetried(t *testing.T) {
	r := newRig(t, fleetOf(3, river), "")
	ro := r.create(Spec{Kind: "config", Selector: "kind=river", Canary: "1", Waves: 1, Version: 1,
		StepTimeout: telemetry.Duration(5 * time.Second)})
	r.kind.failPublish = true
	for range 10 {
		r.tick()
	}
	got := r.get(ro.ID)
	if got.State != Running || got.Gateways[0].Status != Waiting || !strings.Contains(got.Gateways[0].Reason, "broker down") {
		t.Fatalf("while the broker is down: %s, %+v", got.State, got.Gateways[0])
	}
	r.kind.failPublish = false
	r.tick()
	r.tick()
	r.tick()
	if got := r.get(ro.ID); got.State != Done {
		t.Fatalf("after the broker came back: %s, %+v", got.State, got.Gateways)
	}
}

// TestRollbackWhileSending: an operator rolls back while the canary's
// item is being published; the canary, reached, gets its revert too.
func TestRollbackWhileSending(t *testing.T) {
	r := newRig(t, fleetOf(10, river), "")
	ro := r.create(Spec{Kind: "config", Selector: "kind=river", Canary: "1", Waves: 1, Version: 1})
	r.kind.onPublish = func() {
		if _, err := r.e.Rollback(ro.ID, "li.wei"); err != nil {
			t.Error(err)
		}
	}
	r.tick()
	r.tick()
	got := r.get(ro.ID)
	canary := inStep(ro, 0)[0]
	if got.State != RolledBack || byStatus(got)[Reverted] != 1 || !slices.Equal(r.kind.sent(), []string{canary + ":1", canary + ":2"}) {
		t.Fatalf("%s, %v, sent %v", got.State, byStatus(got), r.kind.sent())
	}
}
