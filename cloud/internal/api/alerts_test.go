package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/engine"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// alertRig is the API over a real engine with one firing alert: dissolved
// oxygen at pond-7 below 4 mg/L.
type alertRig struct {
	t      *testing.T
	srv    *httptest.Server
	api    *API
	e      *engine.Engine
	fp     string
	tokens map[string]string // name → secret
}

func newAlertRig(t *testing.T, anonymous apitoken.Role, withTokens bool) *alertRig {
	t.Helper()
	rs, err := rules.Parse("rules.yaml", []byte(`rules:
  - id: pond_do_low
    kind: threshold
    standard: test
    input: {metric: dissolved_oxygen}
    levels:
      - {severity: yellow, op: "<", set: 4, clear: 4.5}
`))
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(2 * time.Hour)
	reg := registry.New()
	e, err := engine.New(engine.Options{Rules: rs, Registry: reg, Now: func() time.Time { return now },
		DeviceSilent: engine.Builtin{Disabled: true}, GatewayOffline: engine.Builtin{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	for i, v := range []float64{3.1, 6} { // pond-7 low, pond-8 fine
		b := &telemetry.Batch{Gateway: "gw1", Site: []string{"pond-7", "pond-8"}[i], Readings: []telemetry.Reading{{
			Device: []string{"do-7", "do-8"}[i], Metric: "dissolved_oxygen", Value: v, Time: now}}}
		reg.ObserveBatch(b)
		if err := e.Observe(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	g := &alertRig{t: t, e: e, tokens: map[string]string{}}
	var file strings.Builder
	file.WriteString("tokens:\n")
	for name, role := range map[string]string{"alice": "operator", "grafana": "viewer"} {
		secret, hash := apitoken.New()
		g.tokens[name] = secret
		file.WriteString("  - {name: " + name + ", role: " + role + ", sha256: " + hash + "}\n")
	}
	var set *apitoken.Set
	if withTokens {
		if set, err = apitoken.Parse("tokens.yaml", []byte(file.String())); err != nil {
			t.Fatal(err)
		}
	}
	g.api = New(nil, reg, slog.New(slog.DiscardHandler), prometheus.NewRegistry()).WithAlerts(e).WithAccess(set, anonymous)
	g.api.now = func() time.Time { return now }
	mux := http.NewServeMux()
	g.api.Register(mux)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	as := e.Alerts(engine.Filter{State: "firing"})
	if len(as) != 1 {
		t.Fatalf("%d alerts firing, want 1", len(as))
	}
	g.fp = as[0].Fingerprint
	return g
}

// do sends a request as who ("" anonymous, a token name, or a raw
// Authorization header starting with "raw:").
func (g *alertRig) do(who, method, path, body string) (int, string, http.Header) {
	g.t.Helper()
	auth := ""
	switch {
	case strings.HasPrefix(who, "raw:"):
		auth = strings.TrimPrefix(who, "raw:")
	case who != "":
		auth = "Bearer " + g.tokens[who]
	}
	return request(g.t, method, g.srv.URL+path, auth, body)
}

// request sends a request with an Authorization header (none when auth is
// empty) and returns the status, the body and the headers.
func request(t *testing.T, method, url, auth, body string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func silenceBody(by string) string {
	return `{"matchers":[{"name":"site","op":"=","value":"pond-7"}],"starts_at":"2026-11-21T08:00:00Z",` +
		`"ends_at":"2026-11-21T10:00:00Z","created_by":"` + by + `","comment":"aerator under repair"}`
}

func TestAlertEndpoints(t *testing.T) {
	g := newAlertRig(t, apitoken.Operator, false)
	code, body, _ := g.do("", "GET", "/api/v1/alerts", "")
	var as []alert.Alert
	if code != 200 || json.Unmarshal([]byte(body), &as) != nil || len(as) != 1 || as[0].Labels["site"] != "pond-7" ||
		as[0].State != alert.Firing || as[0].Severity.String() != "yellow" {
		t.Fatalf("alerts: %d %s", code, body)
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/api/v1/alerts?site=pond-8", "", 200, `[]`},
		{"GET", "/api/v1/alerts?severity=orange", "", 200, `[]`},
		{"GET", "/api/v1/alerts?severity=yellow&site=pond-7", "", 200, g.fp},
		{"GET", "/api/v1/alerts?state=burning", "", 400, `"param":"state"`},
		{"GET", "/api/v1/alerts?severity=purple", "", 400, `"param":"severity"`},
		{"GET", "/api/v1/alerts?colour=red", "", 400, `colour: unknown parameter`},
		{"GET", "/api/v1/alerts/" + g.fp, "", 200, `"rule":"pond_do_low"`},
		{"GET", "/api/v1/alerts/0123456789abcdef", "", 404, `no such alert`},
		{"GET", "/api/v1/alerts/history?station=gw1", "", 200, g.fp},
		{"GET", "/api/v1/alerts/history?limit=0", "", 400, `"param":"limit"`},
		{"POST", "/api/v1/alerts/0123456789abcdef/ack", `{"by":"bob"}`, 404, `no such alert`},
		{"POST", "/api/v1/alerts/" + g.fp + "/ack", `{"comment":"x"}`, 400, `by: say who you are`},
		{"POST", "/api/v1/alerts/" + g.fp + "/ack", `{"by":"bob","who":"x"}`, 400, `unknown field`},
		{"POST", "/api/v1/alerts/" + g.fp + "/ack", `{"by":"bob"}{}`, 400, `more than one JSON document`},
		{"POST", "/api/v1/alerts/" + g.fp + "/ack", `{"by":"bob","comment":"aerator on"}`, 200, `"by":"bob"`},
		{"POST", "/api/v1/silences", silenceBody(""), 400, `created_by: say who you are`},
		{"POST", "/api/v1/silences", `{"matchers":[],"starts_at":"2026-11-21T08:00:00Z"}`, 400, `created_by`},
		{"POST", "/api/v1/silences", strings.Replace(silenceBody("bob"), `"op":"="`, `"op":"=="`, 1), 400, `matchers[0]`},
		{"GET", "/api/v1/silences?all=maybe", "", 400, `"param":"all"`},
		{"DELETE", "/api/v1/silences/nope", "", 404, `no such silence`},
	} {
		code, body, _ := g.do("", tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s %s = %d %s; want %d containing %s", tc.method, tc.path, tc.body, code, body, tc.code, tc.want)
		}
	}

	code, body, _ = g.do("", "POST", "/api/v1/silences", silenceBody("bob"))
	var si alert.Silence
	if code != 200 || json.Unmarshal([]byte(body), &si) != nil || si.ID == "" || si.CreatedBy != "bob" {
		t.Fatalf("create silence: %d %s", code, body)
	}
	if code, body, _ = g.do("", "GET", "/api/v1/alerts/"+g.fp, ""); !strings.Contains(body, si.ID) {
		t.Fatalf("the silenced alert does not name its silence: %d %s", code, body)
	}
	if code, body, _ = g.do("", "GET", "/api/v1/silences", ""); code != 200 || !strings.Contains(body, si.ID) {
		t.Fatalf("silences: %d %s", code, body)
	}
	if code, body, _ = g.do("", "DELETE", "/api/v1/silences/"+si.ID, ""); code != 200 {
		t.Fatalf("expire: %d %s", code, body)
	}
	if code, body, _ = g.do("", "GET", "/api/v1/silences", ""); code != 200 || body != "[]\n" {
		t.Fatalf("silences after expiry: %d %s", code, body)
	}
	if code, body, _ = g.do("", "GET", "/api/v1/silences?all=true", ""); code != 200 || !strings.Contains(body, si.ID) {
		t.Fatalf("all silences after expiry: %d %s", code, body)
	}
}

// Who may do what: reads need viewer, acknowledging and silencing need
// operator; a token's name is the author of what it does; a wrong,
// malformed or missing token is refused with 401 and a 403 says the role
// is too low; every refusal is counted by reason.
func TestAccess(t *testing.T) {
	type call struct {
		who, method, path, body string
		code                    int
		want                    string
	}
	read := func(who string, code int, want string) call {
		return call{who, "GET", "/api/v1/alerts", "", code, want}
	}
	ack := func(who, body string, code int, want string) call {
		return call{who, "POST", "/api/v1/alerts/{fp}/ack", body, code, want}
	}
	for _, tc := range []struct {
		name      string
		anonymous apitoken.Role
		tokens    bool
		calls     []call
		failures  map[string]float64
	}{
		{"tokens, anonymous none", apitoken.None, true, []call{
			read("", 401, "needs a token with the viewer role"),
			read("grafana", 200, "pond_do_low"),
			read("alice", 200, "pond_do_low"),
			read("raw:Bearer fwt_nosuchtoken", 401, "unknown token"),
			read("raw:Basic YWxpY2U6cHc=", 401, `expected \"Bearer`),
			{"", "GET", "/api/v1/stations", "", 401, "needs a token"},
			{"", "GET", "/api/v9/x", "", 401, "needs a token"},
			ack("grafana", `{}`, 403, "token grafana has the viewer role; this needs operator"),
			{"grafana", "POST", "/api/v1/silences", silenceBody(""), 403, "needs operator"},
			{"grafana", "DELETE", "/api/v1/silences/x", "", 403, "needs operator"},
			ack("alice", `{"by":"mallory"}`, 400, `by: \"mallory\" is not \"alice\", whose token this is`),
			ack("alice", `{"comment":"on it"}`, 200, `"by":"alice"`),
			{"alice", "POST", "/api/v1/silences", silenceBody("alice"), 200, `"created_by":"alice"`},
			{"alice", "POST", "/api/v1/silences", silenceBody(""), 200, `"created_by":"alice"`},
		}, map[string]float64{"no_token": 3, "unknown_token": 1, "malformed": 1, "role": 3}},
		{"tokens, anonymous viewer", apitoken.Viewer, true, []call{
			read("", 200, "pond_do_low"),
			ack("", `{"by":"bob"}`, 401, "needs a token with the operator role"),
			{"", "POST", "/api/v1/silences", silenceBody("bob"), 401, "operator role"},
			read("raw:Bearer fwt_nosuchtoken", 401, "unknown token"), // a bad token does not fall back to anonymous
			ack("alice", `{}`, 200, `"by":"alice"`),
		}, map[string]float64{"no_token": 2, "unknown_token": 1}},
		{"no tokens, anonymous operator", apitoken.Operator, false, []call{
			read("", 200, "pond_do_low"),
			ack("", `{"by":"bob"}`, 200, `"by":"bob"`),
			read("raw:Bearer fwt_anything", 401, "unknown token"),
		}, map[string]float64{"unknown_token": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newAlertRig(t, tc.anonymous, tc.tokens)
			for _, c := range tc.calls {
				path := strings.ReplaceAll(c.path, "{fp}", g.fp)
				code, body, h := g.do(c.who, c.method, path, c.body)
				if code != c.code || !strings.Contains(body, c.want) {
					t.Errorf("%s %s %s as %q = %d %s; want %d containing %s", c.method, path, c.body, c.who, code, body, c.code, c.want)
				}
				if auth := h.Get("WWW-Authenticate"); (code == 401) != (auth != "") {
					t.Errorf("%s %s as %q: %d with WWW-Authenticate %q", c.method, path, c.who, code, auth)
				}
			}
			for _, reason := range []string{"no_token", "malformed", "unknown_token", "role"} {
				if got := testutil.ToFloat64(g.api.access.failures.WithLabelValues(reason)); got != tc.failures[reason] {
					t.Errorf("failures{reason=%q} = %v, want %v", reason, got, tc.failures[reason])
				}
			}
		})
	}
}
