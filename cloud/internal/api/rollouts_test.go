package api

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/rollout"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// syncBuffer is a log sink safe for the engine's and the handlers' writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRollouts drives a config rollout through the API over a registry of
// four river gateways and a buoy, the gateways' reports played into the
// registry: refusals (role, body, labels, items, state), the canary, a
// pause that holds the wave, resume, the operator's rollback publishing
// the reverts, and an audit line with the token's name for every action.
func TestRollouts(t *testing.T) {
	reg := registry.NewWithClock(func() time.Time { return t0 })
	report := func(gw string, c telemetry.ConfigState) {
		kind := "river"
		if strings.HasPrefix(gw, "buoy") {
			kind = "buoy"
		}
		c.Source = "remote"
		reg.ObserveState(gw, telemetry.State{State: telemetry.StateOnline, Time: time.Now(),
			Labels: map[string]string{"county": "laoshan", "kind": kind}, Config: &c}, false)
	}
	for _, gw := range []string{"river-1", "river-2", "river-3", "river-4", "buoy-1"} {
		report(gw, telemetry.ConfigState{Version: 2})
	}
	var mu sync.Mutex
	var published []string
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	mreg := prometheus.NewRegistry()
	eng, err := rollout.New(rollout.Options{Fleet: rollout.RegistryFleet{Registry: reg}, Log: log, Metrics: mreg,
		Kinds: map[string]rollout.Kind{"config": rollout.ConfigKind{Registry: reg, Send: func(gw string, env []byte) error {
			e, err := telemetry.DecodeConfig(env)
			if err != nil {
				t.Errorf("published %q: %v", env, err)
			}
			mu.Lock()
			defer mu.Unlock()
			published = append(published, fmt.Sprintf("%s:%d", gw, e.Version))
			return nil
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	opSecret, opHash := apitoken.New()
	viewSecret, viewHash := apitoken.New()
	set, err := apitoken.Parse("tokens.yaml", []byte("tokens:\n  - {name: li.wei, role: operator, sha256: "+opHash+
		"}\n  - {name: analyst, role: viewer, sha256: "+viewHash+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(nil, reg, log, prometheus.NewRegistry()).WithAccess(set, apitoken.None).WithRollouts(eng)
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	call := func(token, method, path, body string) (int, string) {
		t.Helper()
		code, out, _ := request(t, method, srv.URL+path, "Bearer "+token, body)
		return code, out
	}
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	env := func(gw string, v uint64) string {
		b, err := telemetry.EncodeConfig(telemetry.SignConfig(telemetry.ConfigEnvelope{Gateway: gw, Version: v,
			Issued: t0, Config: "gateway: {id: " + gw + "}\n"}, key))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	spec := `{"kind": "config", "selector": "county=laoshan,kind=river", "canary": "25%", "waves": 1, "version": 3, "step_timeout": "1m"}`
	for _, tc := range []struct {
		token, body string
		code        int
		want        string
	}{
		{viewSecret, spec, 403, "operator"},
		{opSecret, "{", 400, "body:"},
		{opSecret, `{"kind": "config", "colour": "red"}`, 400, `unknown field \"colour\"`},
		{opSecret, strings.Replace(spec, "river", "lake", 1), 400, "no gateway has the labels county=laoshan,kind=lake"},
		{opSecret, strings.Replace(spec, "kind=river", "basin=huanghe", 1), 400, "no gateway has the label basin"},
		{opSecret, strings.Replace(spec, `"version": 3`, `"version": 2`, 1), 400, "has seen config version 2"},
		{opSecret, strings.Replace(spec, `"25%"`, `"lots"`, 1), 400, "canary"},
	} {
		if code, out := call(tc.token, "POST", "/api/v1/rollouts", tc.body); code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("POST %s: %d %s; want %d …%s…", tc.body, code, out, tc.code, tc.want)
		}
	}
	code, out := call(opSecret, "POST", "/api/v1/rollouts", spec)
	if code != 200 {
		t.Fatalf("create: %d %s", code, out)
	}
	id := between(out, `"id":"`, `"`)
	ro, _ := eng.Get(id)
	if ro.State != rollout.Draft || len(ro.Gateways) != 4 || ro.Steps != 2 || ro.CreatedBy != "li.wei" {
		t.Fatalf("created %+v", ro)
	}
	if code, out := call(opSecret, "POST", "/api/v1/rollouts", strings.Replace(spec, `"version": 3`, `"version": 9`, 1)); code != 409 ||
		!strings.Contains(out, "one rollout at a time per gateway") {
		t.Errorf("an overlapping rollout: %d %s", code, out)
	}
	base := "/api/v1/rollouts/" + id
	for _, tc := range []struct {
		path, body string
		code       int
		want       string
	}{
		{"/gateways/buoy-1/item", env("buoy-1", 3), 400, "not in rollout"},
		{"/gateways/river-1/item", env("river-2", 3), 400, `addressed to \"river-2\"`},
		{"/gateways/river-1/revert", env("river-1", 3), 400, "version 3, not the rollout's 4"},
		{"/gateways/river-1/item", "{}", 400, "item: config envelope"},
		{"/gateways/river-1/firmware", env("river-1", 3), 404, "neither item nor revert"},
	} {
		if code, out := call(opSecret, "PUT", base+tc.path, tc.body); code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("PUT %s: %d %s; want %d …%s…", tc.path, code, out, tc.code, tc.want)
		}
	}
	if code, out := call(opSecret, "POST", base+"/start", ""); code != 400 || !strings.Contains(out, "no signed items uploaded for 4 gateways") {
		t.Errorf("start before the uploads: %d %s", code, out)
	}
	for _, g := range ro.Gateways {
		for which, v := range map[string]uint64{"item": 3, "revert": 4} {
			if code, out := call(opSecret, "PUT", base+"/gateways/"+g.ID+"/"+which, env(g.ID, v)); code != 200 {
				t.Fatalf("upload %s %s: %d %s", g.ID, which, code, out)
			}
		}
	}
	if code, out := call(viewSecret, "POST", base+"/start", ""); code != 403 {
		t.Errorf("a viewer started it: %d %s", code, out)
	}
	if code, out := call(opSecret, "POST", base+"/start", ""); code != 200 || !strings.Contains(out, `"state":"running"`) {
		t.Fatalf("start: %d %s", code, out)
	}
	canary := ro.Gateways[0].ID
	eng.Tick()
	if !slices.Equal(published, []string{canary + ":3"}) {
		t.Fatalf("published %v; want the canary %s", published, canary)
	}
	report(canary, telemetry.ConfigState{Version: 3, Checking: 3})
	eng.Tick()
	if code, out := call(opSecret, "POST", base+"/pause", ""); code != 200 || !strings.Contains(out, `"state":"paused"`) {
		t.Fatalf("pause: %d %s", code, out)
	}
	if code, out := call(opSecret, "POST", base+"/pause", ""); code != 409 {
		t.Errorf("paused twice: %d %s", code, out)
	}
	report(canary, telemetry.ConfigState{Version: 3})
	eng.Tick()
	eng.Tick()
	got, _ := eng.Get(id)
	if got.Step != 1 || got.Gateways[0].Status != rollout.OK || len(published) != 1 {
		t.Fatalf("paused after the canary: step %d, %+v, published %v", got.Step, got.Gateways[0], published)
	}
	if code, out := call(opSecret, "POST", base+"/resume", ""); code != 200 {
		t.Fatalf("resume: %d %s", code, out)
	}
	eng.Tick()
	if len(published) != 4 {
		t.Fatalf("after resume, published %v", published)
	}
	if code, out := call(opSecret, "POST", base+"/rollback", ""); code != 200 || !strings.Contains(out, `"state":"rolling_back"`) {
		t.Fatalf("rollback: %d %s", code, out)
	}
	eng.Tick()
	for _, g := range ro.Gateways {
		if !slices.Contains(published, g.ID+":4") {
			t.Errorf("no revert published for %s: %v", g.ID, published)
		}
		report(g.ID, telemetry.ConfigState{Version: 4})
	}
	eng.Tick()
	if code, out := call(viewSecret, "GET", base, ""); code != 200 || !strings.Contains(out, `"state":"rolled_back"`) ||
		strings.Count(out, `"status":"reverted"`) != 4 {
		t.Errorf("GET %s: %d %s", base, code, out)
	}
	if code, out := call(viewSecret, "GET", "/api/v1/rollouts", ""); code != 200 || !strings.Contains(out, `"reverted":4`) {
		t.Errorf("GET /api/v1/rollouts: %d %s", code, out)
	}
	if code, _ := call(viewSecret, "GET", "/api/v1/rollouts/nope", ""); code != 404 {
		t.Errorf("an unknown rollout: %d", code)
	}
	refused := map[string]float64{}
	mfs, err := mreg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "fieldwatch_rollout_refused_total" {
			for _, m := range mf.GetMetric() {
				refused[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if refused["malformed"] != 2 || refused["unknown_labels"] != 2 || refused["bad_item"] != 3 || refused["conflict"] != 2 ||
		refused["missing_items"] != 1 {
		t.Errorf("refusals counted %v", refused)
	}
	for _, line := range []string{"rollout created", "rollout item uploaded", "rollout start", "rollout pause",
		"rollout resume", "rollout rollback"} {
		if !strings.Contains(logs.String(), `msg="`+line+`"`) {
			t.Errorf("no audit line %q", line)
		}
	}
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, "by=") && !strings.Contains(l, "by=li.wei") {
			t.Errorf("audit line not by the operator's token: %s", l)
		}
	}
}

func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(rest, to)
	return v
}
