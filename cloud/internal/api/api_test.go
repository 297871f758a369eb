package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/sqlite"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

var t0 = time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)

func setup(t *testing.T) (*httptest.Server, *API) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := &telemetry.Batch{Gateway: "gw1", Site: "north", Stream: "s", FirstSeq: 1}
	for i := 0; i < 120; i++ {
		b.Readings = append(b.Readings, telemetry.Reading{Device: "soil-1", Metric: "soil_moisture", Unit: "%",
			Value: float64(i), Time: t0.Add(time.Duration(i) * time.Minute)})
	}
	if err := st.Write(context.Background(), b.Gateway, b.Site, b.Readings); err != nil {
		t.Fatal(err)
	}
	b.Events = []telemetry.Event{{Device: "gate", Kind: telemetry.EventTag, Key: "982000000000001", Time: t0.Add(time.Hour),
		Attrs: map[string]string{"state": "present"}, Values: map[string]float64{"count": 1}}}
	if err := st.WriteEvents(context.Background(), b.Gateway, b.Site, b.Events); err != nil {
		t.Fatal(err)
	}
	reg := registry.New()
	reg.ObserveBatch(b)
	a := New(st, reg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	a.now = func() time.Time { return t0.Add(2 * time.Hour) }
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, a
}

func call(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: content type %q", path, ct)
	}
	return resp.StatusCode, string(b)
}

func TestRefusals(t *testing.T) {
	srv, a := setup(t)
	const series = "/api/v1/series?station=gw1&device=soil-1&metric=soil_moisture"
	tests := []struct {
		path, endpoint string
		code           int
		want           string
	}{
		{"/api/v1/stations/no-such", "station", 404, `no station \"no-such\"`},
		{"/api/v1/stations/bad%20id", "station", 400, `"param":"id"`},
		{"/api/v1/latest?station=a/b", "latest", 400, `"param":"station"`},
		{"/api/v1/latest?sation=gw1", "latest", 400, `sation: unknown parameter`},
		{"/api/v1/series?station=gw1&device=soil-1", "series", 400, `"param":"metric"`},
		{series + "&from=yesterday", "series", 400, `"param":"from"`},
		{series + "&from=-1h&to=-2h", "series", 400, `must be before to`},
		{series + "&every=10ms", "series", 400, `"param":"every"`},
		{series + "&from=-720h&every=1s", "series", 400, `more than 10000`},
		{series + "&limit=0", "series", 400, `"param":"limit"`},
		{series + "&every=auto&points=10001", "series", 400, `"param":"points"`},
		{series + "&every=1m&points=10", "series", 400, `points: goes with every=auto`},
		{series + "&limit=1&limit=2", "series", 400, `given 2 times`},
		{"/api/v2/anything", "unknown", 404, `no such API endpoint`},
		{"/api/v1/events?kind=a%20b", "events", 400, `"param":"kind"`},
		{"/api/v1/events?from=-1h&to=-2h", "events", 400, `must be before to`},
		{"/api/v1/events?limit=99999", "events", 400, `"param":"limit"`},
	}
	for _, tc := range tests {
		code, body := call(t, srv, tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d %s; want %d containing %s", tc.path, code, body, tc.code, tc.want)
		}
	}
	if n := testutil.ToFloat64(a.requests.WithLabelValues("series", "400")); n != 9 {
		t.Errorf("series 400s counted %v, want 9", n)
	}
}

func TestAnswers(t *testing.T) {
	srv, _ := setup(t)
	code, body := call(t, srv, "/api/v1/stations")
	var stations []registry.Station
	if code != 200 || json.Unmarshal([]byte(body), &stations) != nil || len(stations) != 1 || stations[0].Site != "north" {
		t.Fatalf("stations: %d %s", code, body)
	}
	code, body = call(t, srv, "/api/v1/devices")
	if code != 200 || !strings.Contains(body, `"station":"gw1","id":"soil-1"`) || !strings.Contains(body, `"state":`) {
		t.Fatalf("devices: %d %s", code, body)
	}
	if code, _ = call(t, srv, "/api/v1/devices?station=gw9"); code != 404 {
		t.Fatalf("devices of an unknown station: %d", code)
	}
	code, body = call(t, srv, "/api/v1/latest?station=gw1")
	if code != 200 || !strings.Contains(body, `"value":119`) || !strings.Contains(body, `"quality":"good"`) {
		t.Fatalf("latest: %d %s", code, body)
	}
	var resp SeriesResponse
	code, body = call(t, srv, "/api/v1/series?station=gw1&device=soil-1&metric=soil_moisture&from=2026-11-21T06:00:00Z&to=2026-11-21T07:00:00Z&every=30m")
	if code != 200 || json.Unmarshal([]byte(body), &resp) != nil || len(resp.Samples) != 2 {
		t.Fatalf("series: %d %s", code, body)
	}
	if *resp.Samples[0].Value != 14.5 || *resp.Samples[1].Value != 44.5 {
		t.Fatalf("30-minute means %v %v, want 14.5 and 44.5", *resp.Samples[0].Value, *resp.Samples[1].Value)
	}
	if s := resp.Samples[1]; *s.Min != 30 || *s.Max != 59 || s.Count != 30 {
		t.Fatalf("second 30-minute bucket: min %v max %v count %d, want 30, 59, 30", *s.Min, *s.Max, s.Count)
	}
	if !strings.Contains(body, `"value":14.5,"quality":"good","min":0,"max":29,"count":30}`) {
		t.Fatalf("bucket JSON: %s", body)
	}
	// points=5 over two hours: 30-minute buckets (20 minutes would make 6).
	code, body = call(t, srv, "/api/v1/series?station=gw1&device=soil-1&metric=soil_moisture&from=2026-11-21T06:00:00Z&to=2026-11-21T08:00:00Z&points=5")
	if code != 200 || json.Unmarshal([]byte(body), &resp) != nil || resp.Every != "30m0s" || len(resp.Samples) != 4 {
		t.Fatalf("points=5: %d %s", code, body)
	}
	code, body = call(t, srv, "/api/v1/series?station=gw1&device=soil-1&metric=soil_moisture&from=2026-11-21T06:00:00Z&to=2026-11-21T08:00:00Z&every=auto")
	if code != 200 || json.Unmarshal([]byte(body), &resp) != nil || resp.Every != "10s" || len(resp.Samples) != 120 {
		t.Fatalf("every=auto: %d %s", code, body)
	}
	// Raw samples carry no min, max or count.
	if code, body = call(t, srv, "/api/v1/series?station=gw1&device=soil-1&metric=soil_moisture&limit=1"); code != 200 ||
		strings.Contains(body, `"count"`) || strings.Contains(body, `"min"`) {
		t.Fatalf("raw sample: %s", body)
	}
	// Default range is the 24 h before now (t0+2h): all 120 samples.
	code, body = call(t, srv, "/api/v1/series?station=gw1&device=soil-1&metric=soil_moisture")
	if code != 200 || json.Unmarshal([]byte(body), &resp) != nil || len(resp.Samples) != 120 {
		t.Fatalf("default range: %d samples", len(resp.Samples))
	}
	code, body = call(t, srv, "/api/v1/events?station=gw1&kind=tag")
	if code != 200 || !strings.Contains(body, `"key":"982000000000001"`) || !strings.Contains(body, `"count":1`) {
		t.Fatalf("events: %d %s", code, body)
	}
	if code, body = call(t, srv, "/api/v1/events?station=gw1&kind=drift"); code != 200 || body != "[]\n" {
		t.Fatalf("no drift events: %d %q", code, body)
	}
	if code, body = call(t, srv, "/api/v1/stations/gw1"); code != 200 || !strings.Contains(body, `"events":[{"gateway":"gw1"`) {
		t.Fatalf("station without its recent events: %s", body)
	}
	// An unknown series is an empty list, not null.
	code, body = call(t, srv, "/api/v1/series?station=gw1&device=soil-9&metric=soil_moisture")
	if code != 200 || !strings.Contains(body, `"samples":[]`) {
		t.Fatalf("unknown series: %d %s", code, body)
	}
}
