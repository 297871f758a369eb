package engine

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// recorder is the sink of these tests; the notifier has its own, with real
// receivers.
type recorder struct {
	mu  sync.Mutex
	got []alert.Alert
}

func (r *recorder) Update(_ context.Context, as []alert.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, as...)
	return nil
}

func (r *recorder) states() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.got {
		s := string(a.State) + " " + a.Severity.String()
		if a.Muted() {
			s += " muted"
		}
		if a.Ack != nil {
			s += " acked"
		}
		if a.Flapping {
			s += " flapping"
		}
		out = append(out, s)
	}
	return out
}

const doRule = `rules:
  - id: pond_do
    kind: threshold
    standard: test
    input: {metric: do}
    for: 10m
    levels:
      - {severity: yellow, op: "<", set: 4, clear: 4.5}
      - {severity: red, op: "<", set: 2, clear: 2.5}
`

type rig struct {
	unit string // of the readings fed
	t    *testing.T
	e    *Engine
	reg  *registry.Registry
	sink *recorder
	now  time.Time
	path string
	rs   []rules.Rule
}

func newRig(t *testing.T, ruleYAML string) *rig {
	rs, err := rules.Parse("test.yaml", []byte(ruleYAML))
	if err != nil {
		t.Fatal(err)
	}
	g := &rig{t: t, sink: &recorder{}, now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
		path: filepath.Join(t.TempDir(), "alerts.db"), rs: rs}
	g.reg = registry.NewWithClock(func() time.Time { return g.now })
	g.reg.ObserveState("gw1", telemetry.State{State: telemetry.StateOnline, Site: "pond", Time: g.now,
		Devices: []telemetry.DeviceState{{ID: "probe", Interval: telemetry.Duration(time.Minute), Health: "ok"}}}, false)
	g.open()
	return g
}

func (g *rig) open() {
	g.t.Helper()
	e, err := New(Options{Path: g.path, Rules: g.rs, Registry: g.reg, Sink: g.sink, Now: func() time.Time { return g.now },
		DeviceSilent: Builtin{Disabled: true}, GatewayOffline: Builtin{For: time.Minute}})
	if err != nil {
		g.t.Fatal(err)
	}
	// No pauses: a slow machine between two ticks must not make the
	// engine's pause watch count that time as blind.
	frozen := e.lastTick
	e.mono = func() time.Time { return frozen }
	g.e = e
	g.t.Cleanup(func() { e.Close() })
}

// feed sends one reading of do, measured at at (wall clock now).
func (g *rig) feed(at time.Time, v float64, backlog bool) {
	g.t.Helper()
	b := &telemetry.Batch{Gateway: "gw1", Site: "pond", Backlog: backlog,
		Readings: []telemetry.Reading{{Device: "probe", Metric: "do", Value: v, Unit: g.unit, Time: at}}}
	g.reg.Heard(b)
	g.reg.ObserveBatch(b)
	if err := g.e.Observe(context.Background(), b); err != nil {
		g.t.Fatal(err)
	}
}

func (g *rig) live(d time.Duration, v float64) {
	g.now = g.now.Add(d)
	g.feed(g.now, v, false)
}

func (g *rig) tick(d time.Duration) {
	g.t.Helper()
	g.now = g.now.Add(d)
	if err := g.e.Tick(context.Background()); err != nil {
		g.t.Fatal(err)
	}
}

func (g *rig) want(states ...string) {
	g.t.Helper()
	got := g.sink.states()
	if len(got) != len(states) {
		g.t.Fatalf("notified %q, want %q", got, states)
	}
	for i := range got {
		if got[i] != states[i] {
			g.t.Fatalf("notified %q, want %q", got, states)
		}
	}
}

func (g *rig) only() alert.Alert {
	g.t.Helper()
	as := g.e.Alerts(Filter{State: "all", Rule: "pond_do"})
	if len(as) != 1 {
		g.t.Fatalf("%d alerts, want 1", len(as))
	}
	return as[0]
}

func TestRestartKeepsPendingTimer(t *testing.T) {
	g := newRig(t, doRule)
	g.live(0, 3.5)
	if a := g.only(); a.State != alert.Pending {
		t.Fatalf("state %s, want pending", a.State)
	}
	started := g.only().ActiveAt
	g.e.Close()
	g.open()
	g.live(6*time.Minute, 3.5)
	if a := g.only(); a.State != alert.Pending || !a.ActiveAt.Equal(started) {
		t.Fatalf("after restart: %s since %v, want pending since %v", a.State, a.ActiveAt, started)
	}
	g.live(4*time.Minute, 3.5) // 10 minutes after the condition began
	g.want("firing yellow")
}

func TestBackfillDoesNotPageForResolvedCondition(t *testing.T) {
	g := newRig(t, doRule)
	g.live(0, 6)
	// The gateway comes back after two hours: live first, then its backlog
	// shows an hour-long dip that is over.
	g.now = g.now.Add(2 * time.Hour)
	g.feed(g.now, 6, false)
	start := g.now.Add(-110 * time.Minute)
	for i := 0; i < 100; i++ {
		v := 6.0
		if i >= 10 && i < 70 {
			v = 3
		}
		g.feed(start.Add(time.Duration(i)*time.Minute), v, true)
	}
	g.tick(time.Minute)
	g.want() // nobody paged
	h, err := g.e.History(context.Background(), HistoryQuery{Gateway: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	var fired, resolved bool
	for _, tr := range h {
		fired = fired || (tr.To == alert.Firing && tr.Backfilled)
		resolved = resolved || (tr.To == alert.Resolved && tr.Backfilled)
	}
	if !fired || !resolved {
		t.Fatalf("history %+v lacks the backfilled episode", h)
	}
}

func TestStaleLiveDataPagesOnlyIfStillFiring(t *testing.T) {
	g := newRig(t, doRule)
	// Only old data arrives (the cloud was down): a dip that ended and one
	// that goes on. Published only after settling, and only what still fires.
	base := g.now
	g.now = g.now.Add(3 * time.Hour)
	for i := 0; i <= 60; i++ {
		v := 6.0
		if (i >= 5 && i < 25) || i >= 40 {
			v = 3
		}
		g.feed(base.Add(time.Duration(i)*time.Minute), v, true)
	}
	g.want()
	g.tick(5 * time.Second)
	g.want()
	g.tick(20 * time.Second)
	g.want("firing yellow")
}

func TestAckSilenceAndGatewayInhibition(t *testing.T) {
	g := newRig(t, doRule)
	g.live(0, 3.5)
	g.live(10*time.Minute, 3.5)
	g.want("firing yellow")
	fp := g.only().Fingerprint
	if _, err := g.e.Ack(context.Background(), fp, "", ""); err == nil {
		t.Fatal("ack without a name accepted")
	}
	if _, err := g.e.Ack(context.Background(), fp, "li.wei", "aerator on"); err != nil {
		t.Fatal(err)
	}
	g.want("firing yellow", "firing yellow acked")
	g.live(time.Minute, 1.5) // escalation clears the ack
	g.want("firing yellow", "firing yellow acked", "firing red")

	si, err := g.e.AddSilence(context.Background(), alert.Silence{
		Matchers: []alert.Matcher{{Name: "site", Value: "pond"}}, StartsAt: g.now, EndsAt: g.now.Add(time.Hour),
		CreatedBy: "li.wei", Comment: "pond drained for repair"})
	if err != nil {
		t.Fatal(err)
	}
	g.want("firing yellow", "firing yellow acked", "firing red", "firing red muted")
	if err := g.e.ExpireSilence(context.Background(), si.ID); err != nil {
		t.Fatal(err)
	}
	g.want("firing yellow", "firing yellow acked", "firing red", "firing red muted", "firing red")
	if _, err := g.e.AddSilence(context.Background(), alert.Silence{Matchers: []alert.Matcher{{Name: "site", Op: "=~", Value: "("}},
		StartsAt: g.now, EndsAt: g.now.Add(time.Hour), CreatedBy: "x", Comment: "y"}); err == nil {
		t.Fatal("bad regular expression accepted")
	}

	// The gateway goes offline: while its alert is pending (a reconnect
	// would end it) nothing changes; once it fires after its `for`, it
	// mutes the pond alert.
	g.reg.ObserveState("gw1", telemetry.State{State: telemetry.StateOffline, Time: g.now}, false)
	g.tick(time.Second)
	g.want("firing yellow", "firing yellow acked", "firing red", "firing red muted", "firing red")
	g.tick(time.Minute)
	got := g.sink.states()
	if tail := got[len(got)-2:]; !(contains(tail, "firing orange") && contains(tail, "firing red muted")) {
		t.Fatalf("gateway alert not notified, or the pond alert not muted: %q", got)
	}
	g.reg.ObserveState("gw1", telemetry.State{State: telemetry.StateOnline, Site: "pond", Time: g.now}, false)
	g.tick(time.Second)
	got = g.sink.states()
	if tail := got[len(got)-2:]; !(contains(tail, "resolved orange") && contains(tail, "firing red")) {
		t.Fatalf("after the gateway is back: %q", got)
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func TestFlappingNotifiesOnceAndSettles(t *testing.T) {
	g := newRig(t, `rules:
  - id: pond_do
    kind: threshold
    standard: test
    input: {metric: do}
    levels: [{severity: yellow, op: "<", set: 4}]
`)
	for i := 0; i < 30; i++ {
		v := 5.0
		if i%2 == 0 {
			v = 3
		}
		g.live(time.Minute, v)
	}
	got := g.sink.states()
	if n := len(got); n > 25 || got[n-1] != "firing yellow flapping" && got[n-1] != "resolved yellow flapping" {
		t.Fatalf("while flapping: %d notifications, last %q", n, got[n-1])
	}
	before := len(got)
	for i := 0; i < 25; i++ {
		g.live(time.Minute, 5)
	}
	got = g.sink.states()
	if got[len(got)-1] != "resolved yellow" || len(got) != before+1 {
		t.Fatalf("after settling: %q", got[before:])
	}
}

func TestRuleErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"rules:\n  - id: x\n    kind: threshold\n    standard: s\n    input: {metric: m}\n    levels: [{severity: purple, op: \"<\", set: 1}]\n", "test.yaml:6"},
		{"rules:\n  - id: x\n    kind: thresh\n    standard: s\n", "rules[0].kind"},
		{"rules:\n  - id: x\n    kind: threshold\n    input: {metric: m}\n    levels: [{severity: red, op: \"<\", set: 1}]\n", "rules[0].standard"},
		{"rules:\n  - id: x\n    kind: threshold\n    standard: s\n    input: {metric: m}\n    levels:\n      - {severity: yellow, op: \"<\", set: 1}\n      - {severity: red, op: \"<\", set: 2}\n", "test.yaml:8: rules[0].levels[1].set"},
		{"rules:\n  - id: x\n    kind: threshold\n    standard: s\n    input: {metric: m}\n    levels: [{severity: red, op: \"<\", set: 1, clear: 0.5}]\n", "could never clear"},
		{"rules:\n  - id: x\n    kind: classification\n    standard: s\n    input: {metric: m}\n    classify: {table: gb3838_do}\n    levels: [{severity: red, class: VI}]\n", "not a class"},
		{"rules:\n  - id: x\n    kind: threshold\n    standard: s\n    input: {metric: m}\n    levels: [{severity: red, op: \"<\", set: 1}]\n    overrides: [{site: a, levels: {blue: {set: 2}}}]\n", "no blue level"},
		{"rules:\n  - id: x\n    kind: threshold\n    standard: s\n    input: {metric: m}\n    levels: [{severity: red, op: \"<\", set: 1}]\n    tests: [{name: t, points: [\"5m m\"], expect: [\"5m firing red\"]}]\n", "not metric=value"},
		{"rules:\n  - id: x\n    kind: threshold\n    standard: s\n    input: {metric: m}\n    levels: [{severity: red, op: \"<\", set: 1}]\n    intput: 3\n", "unknown field"},
	}
	for _, c := range cases {
		_, err := rules.Parse("test.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to mention %q", err, c.want)
		}
	}
}

func FuzzRules(f *testing.F) {
	f.Add([]byte(doRule))
	f.Add([]byte("rules:\n  - {id: a, kind: rate, standard: s, input: {metric: m}, change: {window: 1h, direction: drop}, levels: [{severity: red, op: \">=\", set: 1}], tests: [{name: n, points: [\"0m m=1\", \"1h m=0\"], expect: [\"1h inactive\"]}]}\n"))
	for _, name := range []string{"testdata/events.yaml", "testdata/forecast.yaml"} {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("rules:\n  - {tunes: a, disabled: true}\n  - {id: a, kind: nodata, standard: s, nodata: {after: 2}, levels: [{severity: blue}], tests: [{name: n, points: [\"0m m=1\"], expect: [\"5m firing blue\"]}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := rules.Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		_, _, _ = rules.Resolve(rs) // must not panic either
		for _, r := range rs {
			for _, tc := range r.Tests {
				if len(tc.Points) > 200 {
					continue
				}
				_ = RunCase(r, tc) // must not panic
			}
		}
	})
}

// TestHistoryExplainsEachStep: the station page's alert history shows, for
// each transition, the value with its unit and, on firing, the level it
// crossed — as the alert's annotations say them.
func TestHistoryExplainsEachStep(t *testing.T) {
	g := newRig(t, doRule)
	g.unit = "mg/L"
	g.live(0, 3.5)
	g.live(10*time.Minute, 3.5)
	g.live(time.Minute, 1.5)
	g.live(time.Minute, 6)
	g.tick(30 * time.Minute)
	h, err := g.e.History(context.Background(), HistoryQuery{Gateway: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	type step struct{ to, sev, value, unit, threshold string }
	var got []step
	for _, tr := range h {
		if tr.Rule == "pond_do" {
			got = append(got, step{string(tr.To), tr.Severity.String(), tr.ValueText, tr.Unit, tr.Threshold})
		}
	}
	slices.Reverse(got) // History is newest first
	want := []step{
		{"pending", "none", "3.5 mg/L", "mg/L", ""},
		{"firing", "yellow", "3.5 mg/L", "mg/L", "< 4 mg/L"},
		{"firing", "red", "1.5 mg/L", "mg/L", "< 2 mg/L"},
		{"resolved", "red", "6 mg/L", "mg/L", ""}, // the severity it had
	}
	if !slices.Equal(got, want) {
		t.Errorf("history\n got %+v\nwant %+v", got, want)
	}
}

// TestChineseMessageNamesTheStation: with display names in the gateway's
// state, the alert carries them (station_name, site_name) and the Chinese
// description names the station by its name; the English keeps the ids.
func TestChineseMessageNamesTheStation(t *testing.T) {
	g := newRig(t, doRule)
	g.reg.ObserveState("gw1", telemetry.State{State: telemetry.StateOnline, Site: "pond", Name: "1 号鱼塘", SiteName: "东湖渔场",
		Time: g.now.Add(time.Second), Devices: []telemetry.DeviceState{{ID: "probe", Interval: telemetry.Duration(time.Minute), Health: "ok"}}}, false)
	g.unit = "mg/L"
	g.live(time.Minute, 3.5)
	g.live(10*time.Minute, 3.5)
	a := g.only()
	n := a.Annotations
	if a.State != alert.Firing || n["station_name"] != "1 号鱼塘" || n["site_name"] != "东湖渔场" {
		t.Fatalf("%s, annotations %v", a.State, n)
	}
	if !strings.Contains(n["description_cn"], "（1 号鱼塘/probe）") {
		t.Errorf("description_cn %q does not name the station", n["description_cn"])
	}
	if !strings.Contains(n["description"], " at pond/probe") {
		t.Errorf("description %q", n["description"])
	}
}
