package api

import (
	"encoding/csv"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// inventoryRig is the API over a registry of three gateways, behind tokens:
// a viewer's, and none for anonymous callers.
type inventoryRig struct {
	t      *testing.T
	srv    *httptest.Server
	api    *API
	viewer string
}

func newInventoryRig(t *testing.T) *inventoryRig {
	t.Helper()
	reg := registry.NewWithClock(func() time.Time { return t0 })
	off := 0.0031
	reg.ObserveState("farm-north", telemetry.State{State: telemetry.StateOnline, Site: "north", Name: "北区农场 1 号站",
		SiteName: "北区", Version: "0.3.0", Arch: "armv7", Uptime: telemetry.Duration(time.Hour), Time: t0, Buffered: 12,
		BufferBytes: 1 << 20, BufferMaxBytes: 4 << 20, Clock: &telemetry.ClockState{Quality: "ntp", OffsetS: &off},
		Labels: map[string]string{"county": "laoshan", "kind": "farm"}, Config: &telemetry.ConfigState{Version: 7, Source: "remote"},
		Devices: []telemetry.DeviceState{{ID: "soil-1", Health: "ok"}, {ID: "soil-2", Health: "failing"}}}, false)
	reg.ObserveState("pond-3", telemetry.State{State: telemetry.StateOnline, Site: "pond", Name: `=HYPERLINK("x"), "池塘"`,
		Version: "0.3.0", Arch: "amd64", Labels: map[string]string{"county": "laoshan", "kind": "pond"}}, false)
	reg.ObserveState("buoy-7", telemetry.State{State: telemetry.StateOnline, Site: "sea", Labels: map[string]string{"county": "jimo"}}, false)
	reg.ObserveState("buoy-7", telemetry.State{State: telemetry.StateOffline}, false)
	secret, hash := apitoken.New()
	set, err := apitoken.Parse("tokens.yaml", []byte("tokens:\n  - {name: analyst, role: viewer, sha256: "+hash+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(nil, reg, slog.New(slog.DiscardHandler), prometheus.NewRegistry()).WithAccess(set, apitoken.None)
	a.now = func() time.Time { return t0.Add(time.Minute) }
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &inventoryRig{t: t, srv: srv, api: a, viewer: secret}
}

func (g *inventoryRig) get(token, path string) (int, string, http.Header) {
	g.t.Helper()
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	return request(g.t, http.MethodGet, g.srv.URL+path, auth, "")
}

func TestInventory(t *testing.T) {
	g := newInventoryRig(t)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"buoy-7", "farm-north", "pond-3"}},
		{"?label=county:laoshan", []string{"farm-north", "pond-3"}},
		{"?label=county:laoshan&label=kind:pond", []string{"pond-3"}},
		{"?label=county:laoshan&label=county:laoshan", []string{"farm-north", "pond-3"}},
		{"?label=kind:buoy", []string{}},
		{"?site=north", []string{"farm-north"}},
		{"?state=offline", []string{"buoy-7"}},
		{"?state=online&label=county:laoshan&site=pond", []string{"pond-3"}},
	} {
		code, body, _ := g.get(g.viewer, "/api/v1/inventory"+tc.query)
		var resp InventoryResponse
		if err := json.Unmarshal([]byte(body), &resp); code != 200 || err != nil {
			t.Errorf("%s: %d %s (%v)", tc.query, code, body, err)
			continue
		}
		got := []string{}
		for _, r := range resp.Gateways {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.query, got, tc.want)
		}
	}
	_, body, _ := g.get(g.viewer, "/api/v1/inventory?site=north")
	for _, want := range []string{`"name":"北区农场 1 号站"`, `"labels":{"county":"laoshan","kind":"farm"}`, `"arch":"armv7"`,
		`"config_version":7`, `"uptime_s":3600`, `"backlog":12`, `"buffer_bytes":1048576`, `"buffer_max_bytes":4194304`,
		`"clock_quality":"ntp"`, `"clock_offset_s":0.0031`, `"devices":2`, `"faulty_devices":1`, `"state":"online"`, `"stale":false`} {
		if !strings.Contains(body, want) {
			t.Errorf("farm-north lacks %s: %s", want, body)
		}
	}
}

func TestInventoryRefusals(t *testing.T) {
	g := newInventoryRig(t)
	for _, tc := range []struct {
		token, query string
		code         int
		want         string
	}{
		{"", "", 401, "needs a token with the viewer role"},
		{"fwt_nosuchtoken", "", 401, "unknown token"},
		{g.viewer, "?label=county", 400, `label: \"county\" is not key:value`},
		{g.viewer, "?label=county:", 400, "label county value id is empty"},
		{g.viewer, "?label=a%20b:c", 400, "label id"},
		{g.viewer, "?label=county:laoshan&label=county:jimo", 400, "a gateway has one"},
		{g.viewer, "?label=" + strings.Repeat("k:v&label=", 16) + "k:v", 400, "given 17 times"},
		{g.viewer, "?site=a/b", 400, "site:"},
		{g.viewer, "?site=a&site=b", 400, "given 2 times"},
		{g.viewer, "?state=asleep", 400, `state: \"asleep\" is not online, offline or unknown`},
		{g.viewer, "?county=laoshan", 400, "unknown parameter"},
	} {
		for _, path := range []string{"/api/v1/inventory", "/api/v1/inventory.csv"} {
			code, body, h := g.get(tc.token, path+tc.query)
			if code != tc.code || !strings.Contains(body, tc.want) || h.Get("Content-Type") != "application/json" {
				t.Errorf("%s%s: %d %s %s, want %d …%s…", path, tc.query, code, h.Get("Content-Type"), body, tc.code, tc.want)
			}
		}
	}
	if n := testutil.ToFloat64(g.api.requests.WithLabelValues("inventory_csv", "400")); n != 9 {
		t.Errorf("inventory_csv 400s counted %v, want 9", n)
	}
}

func TestInventoryCSV(t *testing.T) {
	g := newInventoryRig(t)
	code, body, h := g.get(g.viewer, "/api/v1/inventory.csv?label=county:laoshan")
	if code != 200 || h.Get("Content-Type") != "text/csv; charset=utf-8" ||
		h.Get("Content-Disposition") != `attachment; filename="fieldwatch-inventory-20261121-1401.csv"` {
		t.Fatalf("%d %v %s", code, h, body)
	}
	if !strings.HasPrefix(body, "\uFEFFid,name,site,") || !strings.Contains(body, "\r\n") {
		t.Fatalf("no BOM or no CRLF: %q", body[:min(len(body), 80)])
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || !slices.Equal(recs[0], inventoryHeader) {
		t.Fatalf("%q", recs)
	}
	col := func(rec []string, name string) string { return rec[slices.Index(inventoryHeader, name)] }
	farm, pond := recs[1], recs[2]
	for name, want := range map[string]string{"id": "farm-north", "name": "北区农场 1 号站", "site_name": "北区",
		"labels": "county:laoshan kind:farm", "state": "online", "stale": "false", "version": "0.3.0", "arch": "armv7",
		"config_version": "7", "config_source": "remote", "uptime_s": "3600", "backlog": "12", "buffer_bytes": "1048576",
		"buffer_max_bytes": "4194304", "buffer_use_%": "25.0", "clock_quality": "ntp", "clock_offset_s": "0.0031",
		"clock_max_error_s": "", "devices": "2", "faulty_devices": "1", "last_seen": "2026-11-21T14:00:00+08:00"} {
		if got := col(farm, name); got != want {
			t.Errorf("farm-north %s = %q, want %q", name, got, want)
		}
	}
	// A name with quotes and a comma is quoted; one that starts like a formula is kept text.
	if got := col(pond, "name"); got != `'=HYPERLINK("x"), "池塘"` {
		t.Errorf("pond-3 name %q", got)
	}
	if !strings.Contains(body, `"'=HYPERLINK(""x""), ""池塘"""`) {
		t.Errorf("not quoted as RFC 4180: %s", body)
	}
	if code, body, _ := g.get(g.viewer, "/api/v1/inventory.csv?label=kind:buoy"); code != 200 || strings.Count(body, "\n") != 1 {
		t.Errorf("an empty inventory: %d %q", code, body)
	}
}
