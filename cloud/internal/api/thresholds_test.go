package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/engine"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/packs"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// thresholdsRig is the API over an engine with every rule pack (and the
// extra rules of extra), and farm-north's air sensor heard once.
func thresholdsRig(t *testing.T, extra string) *httptest.Server {
	t.Helper()
	rs, err := packs.All()
	if err != nil {
		t.Fatal(err)
	}
	if extra != "" {
		more, err := rules.Parse("rules.yaml", []byte(extra))
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, more...)
	}
	now := t0.Add(2 * time.Hour)
	reg := registry.New()
	e, err := engine.New(engine.Options{Rules: rs, Registry: reg, Now: func() time.Time { return now },
		DeviceSilent: engine.Builtin{Disabled: true}, GatewayOffline: engine.Builtin{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	reg.ObserveState("farm-north", telemetry.State{Site: "north-farm", State: telemetry.StateOnline,
		Devices: []telemetry.DeviceState{{ID: "air-mast", Profile: "renke/rs-ws-n01-8"}}}, false)
	b := &telemetry.Batch{Gateway: "farm-north", Site: "north-farm", Readings: []telemetry.Reading{
		{Device: "air-mast", Metric: "air_temperature", Unit: "°C", Value: 21.4, Time: now},
		{Device: "air-mast", Metric: "air_humidity", Unit: "%", Value: 62.5, Time: now}}}
	reg.ObserveBatch(b)
	if err := e.Observe(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	a := New(nil, reg, slog.New(slog.DiscardHandler), prometheus.NewRegistry()).WithAlerts(e)
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func getThresholds(t *testing.T, srv *httptest.Server, query string) (int, Thresholds) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/api/v1/thresholds?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out Thresholds
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
	return resp.StatusCode, out
}

// TestThresholdsFromPacks: the air temperature of an agricultural air
// sensor is judged by the heat rule's two levels (orange ≥ 37 °C, red ≥ 40
// °C over the 24-hour maximum), and by nothing else the packs hold for it:
// the spring/autumn frost rule is disabled, the livestock rule judges THI
// (not the temperature's scale), the others are rates and accumulations.
func TestThresholdsFromPacks(t *testing.T) {
	srv := thresholdsRig(t, "")
	code, got := getThresholds(t, srv, "station=farm-north&device=air-mast&metric=air_temperature")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if got.Unit != "°C" || got.Site != "north-farm" {
		t.Errorf("unit %q site %q, want °C and north-farm", got.Unit, got.Site)
	}
	if len(got.Thresholds) != 2 {
		t.Fatalf("thresholds %+v, want the heat rule's two levels", got.Thresholds)
	}
	want := []struct {
		sev   string
		value float64
	}{{"orange", 37}, {"red", 40}}
	for i, w := range want {
		th := got.Thresholds[i]
		if th.Rule != "agri_heat_max24h" || th.Severity != w.sev || th.Op != ">=" || th.Value != w.value ||
			th.Agg != "max" || th.Window != "24h" || th.Source != "rule" || th.Name != "High temperature, 24-hour maximum" ||
			th.NameCN != "高温预警(监测)" {
			t.Errorf("threshold %d: %+v, want agri_heat_max24h %s >= %v over max 24h", i, th, w.sev, w.value)
		}
	}
	if c := got.Thresholds[0].Clear; c == nil || *c != 36.5 {
		t.Errorf("orange clears at %v, want 36.5", c)
	}

	// No threshold rule judges humidity or an unknown series.
	for _, q := range []string{"station=farm-north&device=air-mast&metric=air_humidity",
		"station=nowhere&device=x&metric=air_temperature2"} {
		if code, got := getThresholds(t, srv, q); code != 200 || len(got.Thresholds) != 0 {
			t.Errorf("%s: %d %+v, want no thresholds", q, code, got.Thresholds)
		}
	}
	for _, q := range []string{"device=air-mast&metric=air_temperature", "station=farm-north&device=air-mast",
		"station=farm-north&device=air-mast&metric=air_temperature&every=1m"} {
		if code, _ := getThresholds(t, srv, q); code != 400 {
			t.Errorf("%s: status %d, want 400", q, code)
		}
	}
}

// TestThresholdsFollowTunings: the answer is the engine's own matching, so
// a tuning's override for the device, a rule enabled by a tuning and a
// selector that leaves the device out all show.
func TestThresholdsFollowTunings(t *testing.T) {
	srv := thresholdsRig(t, `rules:
  - tunes: agri_heat_max24h
    overrides: [{device: farm-north/air-mast, levels: {orange: {set: 35}}}]
  - tunes: agri_frost_air_spring_autumn
    enable: true
    select: {site: [south-orchard]}
`)
	_, got := getThresholds(t, srv, "station=farm-north&device=air-mast&metric=air_temperature")
	if len(got.Thresholds) != 2 || got.Thresholds[0].Value != 35 || got.Thresholds[0].Source != "device farm-north/air-mast" ||
		got.Thresholds[0].Clear != nil || got.Thresholds[1].Value != 40 {
		t.Errorf("thresholds %+v, want orange 35 from the device override and red 40", got.Thresholds)
	}
}
