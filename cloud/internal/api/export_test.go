package api

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/sqlite"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// exportRig is the API over a SQLite store holding three series of station
// gw1 with values no formula predicts, and a series of gw2.
type exportRig struct {
	srv     *httptest.Server
	api     *API
	written map[string][]telemetry.Reading // device/metric → readings, oldest first
	viewer  string                         // a viewer token's secret
}

const exportFrom, exportTo = "2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z"

func newExportRig(t *testing.T, st store.Store, withTokens bool) *exportRig {
	t.Helper()
	if st == nil {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "f.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		st = s
	}
	g := &exportRig{written: map[string][]telemetry.Reading{}}
	rng := rand.New(rand.NewPCG(13, 2))
	add := func(gw, dev, metric, unit string, n int, step time.Duration) {
		var rs []telemetry.Reading
		for i := 0; i < n; i++ {
			r := telemetry.Reading{Device: dev, Metric: metric, Unit: unit, Value: rng.NormFloat64() * 30,
				Time: t0.Add(-time.Duration(i) * step).Add(time.Duration(rng.IntN(1000)) * time.Microsecond)}
			if i%101 == 5 {
				r.Value, r.Quality = math.NaN(), telemetry.Bad
			}
			rs = append([]telemetry.Reading{r}, rs...)
		}
		if err := st.Write(context.Background(), gw, "north", rs); err != nil {
			t.Fatal(err)
		}
		if gw == "gw1" {
			g.written[dev+"/"+metric] = rs
		}
	}
	add("gw1", "soil-1", "soil_moisture", "%", 2345, 10*time.Second)
	add("gw1", "soil-1", "soil_temperature", "°C", 300, time.Minute)
	add("gw1", "air-1", "air_humidity", "%RH", 50, 30*time.Minute)
	add("gw2", "soil-1", "soil_moisture", "%", 10, time.Minute)
	var set *apitoken.Set
	if withTokens {
		secret, hash := apitoken.New()
		g.viewer = secret
		var err error
		if set, err = apitoken.Parse("tokens.yaml", []byte("tokens:\n  - {name: grafana, role: viewer, sha256: "+hash+"}\n")); err != nil {
			t.Fatal(err)
		}
	}
	g.api = New(st, registry.New(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if withTokens {
		g.api.WithAccess(set, apitoken.None)
	}
	g.api.now = func() time.Time { return t0.Add(2 * time.Hour) }
	mux := http.NewServeMux()
	g.api.Register(mux)
	g.srv = httptest.NewUnstartedServer(mux)
	g.srv.Config.WriteTimeout = 2 * time.Second
	g.srv.Start()
	t.Cleanup(g.srv.Close)
	return g
}

func (g *exportRig) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", g.srv.URL+path, nil)
	if g.viewer != "" {
		req.Header.Set("Authorization", "Bearer "+g.viewer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body cut off: %v", path, err)
	}
	return resp, string(b)
}

// row is one exported raw sample.
type row struct {
	Time                          time.Time
	Station, Device, Metric, Unit string
	Value                         *float64
}

func parseCSV(t *testing.T, body string) []row {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != "time,station,device,metric,value,unit" {
		t.Fatalf("header %v", recs[0])
	}
	var out []row
	for _, r := range recs[1:] {
		tm, err := time.Parse(time.RFC3339Nano, r[0])
		if err != nil || tm.Location() != time.UTC {
			t.Fatalf("time %q: %v", r[0], err)
		}
		x := row{Time: tm, Station: r[1], Device: r[2], Metric: r[3], Unit: r[5]}
		if r[4] != "" {
			v, err := strconv.ParseFloat(r[4], 64)
			if err != nil {
				t.Fatal(err)
			}
			x.Value = &v
		}
		out = append(out, x)
	}
	return out
}

func parseJSONL(t *testing.T, body string) []row {
	t.Helper()
	var out []row
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var x row
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&x); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, x)
	}
	return out
}

// checkRows compares exported rows with the readings of the series named,
// in that order, exactly.
func (g *exportRig) checkRows(t *testing.T, got []row, series ...string) {
	t.Helper()
	var want []telemetry.Reading
	for _, s := range series {
		want = append(want, g.written[s]...)
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows exported, want %d", len(got), len(want))
	}
	for i, r := range want {
		x := got[i]
		if !x.Time.Equal(r.Time) || x.Station != "gw1" || x.Device != r.Device || x.Metric != r.Metric || x.Unit != r.Unit ||
			(x.Value == nil) != math.IsNaN(r.Value) || x.Value != nil && *x.Value != r.Value {
			t.Fatalf("row %d = %+v, want %+v", i, x, r)
		}
	}
}

func TestExportRoundTrip(t *testing.T) {
	exportPage = 1000 // several pages per series
	t.Cleanup(func() { exportPage = 10_000 })
	g := newExportRig(t, nil, false)
	const rng = "&from=" + exportFrom + "&to=" + exportTo
	resp, body := g.get(t, "/api/v1/export?station=gw1&device=soil-1&metric=soil_moisture"+rng)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="fieldwatch-gw1-soil-1-soil_moisture-20261120T000000Z-20261122T000000Z.csv"` {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	g.checkRows(t, parseCSV(t, body), "soil-1/soil_moisture")

	resp, body = g.get(t, "/api/v1/export?station=gw1&device=soil-1&metric=soil_moisture&format=jsonl"+rng)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" ||
		!strings.HasSuffix(resp.Header.Get("Content-Disposition"), `.jsonl"`) {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	g.checkRows(t, parseJSONL(t, body), "soil-1/soil_moisture")

	// The whole station, series by series (device, then metric); one device.
	_, body = g.get(t, "/api/v1/export?station=gw1"+rng)
	g.checkRows(t, parseCSV(t, body), "air-1/air_humidity", "soil-1/soil_moisture", "soil-1/soil_temperature")
	_, body = g.get(t, "/api/v1/export?station=gw1&device=soil-1&format=jsonl"+rng)
	g.checkRows(t, parseJSONL(t, body), "soil-1/soil_moisture", "soil-1/soil_temperature")
	_, body = g.get(t, "/api/v1/export?station=gw1&metric=air_humidity"+rng)
	g.checkRows(t, parseCSV(t, body), "air-1/air_humidity")

	// A range: [from, to).
	w := g.written["soil-1/soil_moisture"]
	from, to := w[100].Time, w[2200].Time
	_, body = g.get(t, "/api/v1/export?station=gw1&device=soil-1&metric=soil_moisture&from="+
		from.Format(time.RFC3339Nano)+"&to="+to.Format(time.RFC3339Nano))
	got := parseCSV(t, body)
	if len(got) != 2100 || !got[0].Time.Equal(from) || !got[2099].Time.Equal(w[2199].Time) {
		t.Fatalf("[w100, w2200) gave %d rows", len(got))
	}
	// Nothing stored: the header alone.
	if _, body = g.get(t, "/api/v1/export?station=gw9"+rng); body != "time,station,device,metric,value,unit\n" {
		t.Fatalf("empty export %q", body)
	}
	if n := testutil.ToFloat64(g.api.requests.WithLabelValues("export", "200")); n != 7 {
		t.Errorf("exports counted %v, want 7", n)
	}
}

// A page boundary that falls among samples of one instant (two series rows:
// the device's unit changed) splits none of them.
func TestExportPageBoundaryAtOneInstant(t *testing.T) {
	exportPage = 3
	t.Cleanup(func() { exportPage = 10_000 })
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, unit := range []string{"%", "m3/m3"} {
		var rs []telemetry.Reading
		for i := 0; i < 9; i++ {
			rs = append(rs, telemetry.Reading{Device: "d", Metric: "m", Unit: unit, Value: float64(i), Time: t0.Add(time.Duration(i) * time.Second)})
		}
		if err := st.Write(context.Background(), "gw1", "", rs); err != nil {
			t.Fatal(err)
		}
	}
	g := newExportRig(t, st, false)
	_, body := g.get(t, "/api/v1/export?station=gw1&device=d&metric=m&from="+exportFrom+"&to="+exportTo)
	got := parseCSV(t, body)
	if len(got) != 18 {
		t.Fatalf("%d rows, want 18:\n%s", len(got), body)
	}
	for i, x := range got {
		if !x.Time.Equal(t0.Add(time.Duration(i/2)*time.Second)) || *x.Value != float64(i/2) {
			t.Fatalf("row %d = %+v", i, x)
		}
	}
}

// bucketRow is one exported bucket.
type bucketRow struct {
	Time                          time.Time
	Station, Device, Metric, Unit string
	Mean, Min, Max                *float64
	Count                         int
}

func TestExportAggregatedEqualsSeries(t *testing.T) {
	g := newExportRig(t, nil, false)
	const q = "station=gw1&device=soil-1&metric=soil_moisture&from=2026-11-21T00:03:00Z&to=" + exportTo
	for _, every := range []string{"every=7m", "points=500"} {
		_, body := g.get(t, "/api/v1/series?"+q+"&"+every)
		var series SeriesResponse
		if err := json.Unmarshal([]byte(body), &series); err != nil || len(series.Samples) < 10 {
			t.Fatalf("series: %v %s", err, body)
		}
		_, body = g.get(t, "/api/v1/export?"+q+"&"+every+"&format=jsonl")
		var got []bucketRow
		for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
			var b bucketRow
			dec := json.NewDecoder(strings.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&b); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			got = append(got, b)
		}
		_, csvBody := g.get(t, "/api/v1/export?"+q+"&"+every)
		recs, err := csv.NewReader(strings.NewReader(csvBody)).ReadAll()
		if err != nil || strings.Join(recs[0], ",") != "time,station,device,metric,mean,min,max,count,unit" || len(recs) != len(got)+1 {
			t.Fatalf("aggregated CSV: %v, %d records for %d buckets; header %v", err, len(recs), len(got), recs[0])
		}
		if len(got) != len(series.Samples) {
			t.Fatalf("%s: export has %d buckets, series %d", every, len(got), len(series.Samples))
		}
		for i, sm := range series.Samples {
			b := got[i]
			rec := recs[i+1]
			if !b.Time.Equal(sm.Time) || *b.Mean != *sm.Value || *b.Min != *sm.Min || *b.Max != *sm.Max || b.Count != sm.Count ||
				b.Count == 0 || b.Unit != "%" || b.Device != "soil-1" ||
				rec[0] != sm.Time.Format(time.RFC3339Nano) || rec[4] != strconv.FormatFloat(*sm.Value, 'g', -1, 64) ||
				rec[7] != strconv.Itoa(sm.Count) {
				t.Fatalf("%s: bucket %d: export %+v / %v, series %+v", every, i, b, rec, sm)
			}
		}
	}
}

func TestExportRefusals(t *testing.T) {
	g := newExportRig(t, nil, false)
	const ok = "/api/v1/export?station=gw1&device=soil-1&metric=soil_moisture"
	tests := []struct {
		path string
		code int
		want string
	}{
		{"/api/v1/export", 400, `"param":"station"`},
		{"/api/v1/export?station=a/b", 400, `"param":"station"`},
		{"/api/v1/export?station=gw1&device=-x", 400, `"param":"device"`},
		{"/api/v1/export?station=gw1&metric=a%20b", 400, `"param":"metric"`},
		{ok + "&format=xlsx", 400, `format: \"xlsx\" is not csv or jsonl`},
		{ok + "&from=yesterday", 400, `"param":"from"`},
		{ok + "&from=-1h&to=-2h", 400, `must be before to`},
		{ok + "&to=99999999999", 400, `outside 1970`},
		{ok + "&every=10ms", 400, `"param":"every"`},
		{ok + "&every=5m&points=100", 400, `points: goes with every=auto`},
		{ok + "&points=0", 400, `"param":"points"`},
		{ok + "&limit=5", 400, `limit: unknown parameter`},
		{ok + "&format=csv&format=csv", 400, `given 2 times`},
	}
	for _, tc := range tests {
		resp, body := g.get(t, tc.path)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s = %d %s; want %d containing %s", tc.path, resp.StatusCode, body, tc.code, tc.want)
		}
	}
	if n := testutil.ToFloat64(g.api.requests.WithLabelValues("export", "400")); n != float64(len(tests)) {
		t.Errorf("export 400s counted %v, want %d", n, len(tests))
	}
}

func TestExportNeedsViewer(t *testing.T) {
	g := newExportRig(t, nil, true)
	const path = "/api/v1/export?station=gw1&device=air-1&metric=air_humidity&from=" + exportFrom + "&to=" + exportTo
	resp, err := http.Get(g.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" || strings.Contains(string(b), "air_humidity,") {
		t.Fatalf("without a token: %d %s", resp.StatusCode, b)
	}
	req, _ := http.NewRequest("GET", g.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer fwt_not-a-token")
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("unknown token: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	_, body := g.get(t, path) // with the viewer token
	g.checkRows(t, parseCSV(t, body), "air-1/air_humidity")
	if n := testutil.ToFloat64(g.api.requests.WithLabelValues("export", "401")); n != 2 {
		t.Errorf("export 401s counted %v, want 2", n)
	}
}

// slowStore takes delay over every Series call.
type slowStore struct {
	store.Store
	delay time.Duration
}

func (s slowStore) Series(ctx context.Context, q store.SeriesQuery) ([]store.Sample, error) {
	time.Sleep(s.delay)
	return s.Store.Series(ctx, q)
}

// An export that takes longer than the server's WriteTimeout completes: each
// page extends the deadline.
func TestExportOutlastsWriteTimeout(t *testing.T) {
	exportPage = 100
	t.Cleanup(func() { exportPage = 10_000 })
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := newExportRig(t, slowStore{st, 100 * time.Millisecond}, false)
	g.srv.Config.WriteTimeout = 500 * time.Millisecond // 24 pages take 2.4 s
	start := time.Now()
	_, body := g.get(t, "/api/v1/export?station=gw1&device=soil-1&metric=soil_moisture&from="+exportFrom+"&to="+exportTo)
	g.checkRows(t, parseCSV(t, body), "soil-1/soil_moisture")
	if d := time.Since(start); d < time.Second {
		t.Fatalf("took %v: the store was not slow enough to prove anything", d)
	}
}

// countingStore counts Series calls, each slowed a little.
type countingStore struct {
	store.Store
	calls atomic.Int64
}

func (s *countingStore) Series(ctx context.Context, q store.SeriesQuery) ([]store.Sample, error) {
	s.calls.Add(1)
	time.Sleep(2 * time.Millisecond)
	return s.Store.Series(ctx, q)
}

// A client that goes away stops the export: the store is asked no more.
func TestExportStopsWhenClientLeaves(t *testing.T) {
	exportPage = 10
	t.Cleanup(func() { exportPage = 10_000 })
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &countingStore{Store: st}
	g := newExportRig(t, cs, false)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", g.srv.URL+"/api/v1/export?station=gw1&device=soil-1&metric=soil_moisture&from="+exportFrom+"&to="+exportTo, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := cs.calls.Load()
		time.Sleep(200 * time.Millisecond)
		if cs.calls.Load() == n {
			if n >= 235 { // 2345 samples in pages of 10
				t.Fatalf("the export ran to its end (%d pages) after the client left", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the export still runs 10 s after the client left")
		}
	}
}
