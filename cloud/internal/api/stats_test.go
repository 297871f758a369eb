package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/engine"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/sqlite"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

// local is a time in Shanghai on November day of 2026.
func local(day, hour, minute int) time.Time {
	return time.Date(2026, 11, day, hour, minute, 0, 0, shanghai)
}

func TestPeriods(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		t         time.Time
		period    string
		loc       *time.Location
		start, nx time.Time
	}{
		{"a Shanghai day begins at 16:00 UTC", time.Date(2026, 11, 20, 15, 59, 0, 0, time.UTC), "day", shanghai,
			local(20, 0, 0), local(21, 0, 0)},
		{"and the next one at 16:00 UTC", time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC), "day", shanghai,
			local(21, 0, 0), local(22, 0, 0)},
		{"weeks begin on Monday", local(22, 23, 59), "week", shanghai, local(16, 0, 0), local(23, 0, 0)},
		{"a Monday begins its week", local(23, 0, 0), "week", shanghai, local(23, 0, 0), local(30, 0, 0)},
		{"a week across months", time.Date(2026, 12, 2, 9, 0, 0, 0, shanghai), "week", shanghai, local(30, 0, 0),
			time.Date(2026, 12, 7, 0, 0, 0, 0, shanghai)},
		{"months", local(30, 23, 0), "month", shanghai, local(1, 0, 0), time.Date(2026, 12, 1, 0, 0, 0, 0, shanghai)},
		{"December to January", time.Date(2026, 12, 31, 12, 0, 0, 0, shanghai), "month", shanghai,
			time.Date(2026, 12, 1, 0, 0, 0, 0, shanghai), time.Date(2027, 1, 1, 0, 0, 0, 0, shanghai)},
		{"a day where clocks go back is 25 hours", time.Date(2026, 10, 25, 12, 0, 0, 0, berlin), "day", berlin,
			time.Date(2026, 10, 25, 0, 0, 0, 0, berlin), time.Date(2026, 10, 26, 0, 0, 0, 0, berlin)},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := periodStart(c.t, c.period, c.loc)
			next := nextPeriod(start, c.period, c.loc)
			if !start.Equal(c.start) || !next.Equal(c.nx) {
				t.Fatalf("%s of %v: %v … %v, want %v … %v", c.period, c.t, start, next, c.start, c.nx)
			}
		})
	}
	if d := nextPeriod(time.Date(2026, 10, 25, 0, 0, 0, 0, berlin), "day", berlin).Sub(time.Date(2026, 10, 25, 0, 0, 0, 0, berlin)); d != 25*time.Hour {
		t.Fatalf("25 October in Berlin lasts %v", d)
	}
}

func TestExpected(t *testing.T) {
	first := local(19, 20, 0)
	for _, c := range []struct {
		name            string
		start, end, now time.Time
		iv              time.Duration
		want            int64
	}{
		{"a whole day", local(20, 0, 0), local(21, 0, 0), local(25, 0, 0), 10 * time.Minute, 144},
		{"from the first reading on, which is due", local(19, 0, 0), local(20, 0, 0), local(25, 0, 0), 10 * time.Minute, 24},
		{"the first reading alone", local(19, 0, 0), local(20, 0, 0), local(19, 20, 1), 10 * time.Minute, 1},
		{"today, up to now", local(21, 0, 0), local(22, 0, 0), local(21, 12, 0), 10 * time.Minute, 72},
		{"before the first reading", local(18, 0, 0), local(19, 0, 0), local(25, 0, 0), 10 * time.Minute, 0},
		{"a period to come", local(26, 0, 0), local(27, 0, 0), local(25, 0, 0), 10 * time.Minute, 0},
		{"an interval that does not divide the day", local(20, 0, 0), local(21, 0, 0), local(25, 0, 0), 7 * time.Second, 12343},
		{"no interval", local(20, 0, 0), local(21, 0, 0), local(25, 0, 0), 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := expected(first, c.start, c.end, c.now, c.iv); got != c.want {
				t.Fatalf("expected %d, want %d", got, c.want)
			}
		})
	}
}

// statsRig is the API over SQLite, a registry and an engine with one
// threshold rule, holding device d1 (every 10 minutes, declared) and d2
// (no interval declared) of gw1, observed and stored as the ingestor
// does; now is noon on 21 November in Shanghai.
type statsRig struct {
	srv     *httptest.Server
	api     *API
	written []telemetry.Reading // d1's
	delay   map[time.Time]time.Duration
}

var statsNow = local(21, 12, 0)

func newStatsRig(t *testing.T) *statsRig {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rs, err := rules.Parse("rules.yaml", []byte(`rules:
  - id: x_high
    kind: threshold
    standard: "a test's own"
    input: {metric: x}
    levels:
      - {severity: yellow, op: ">", set: 60, clear: 50}
`))
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New()
	e, err := engine.New(engine.Options{Rules: rs, Registry: reg, Now: func() time.Time { return statsNow },
		DeviceSilent: engine.Builtin{Disabled: true}, GatewayOffline: engine.Builtin{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	reg.ObserveState("gw1", telemetry.State{Site: "north", State: telemetry.StateOnline, Devices: []telemetry.DeviceState{
		{ID: "d1", Interval: telemetry.Duration(10 * time.Minute)}, {ID: "d2"}}}, false)
	g := &statsRig{delay: map[time.Time]time.Duration{}}
	// d1: x every 10 minutes from 20:00 on the 19th to now; on the 20th six
	// readings missing and two bad; above 60 from 10:00 to 11:00 on the
	// 20th, from 23:30 on the 20th to 00:20 on the 21st, and from 11:30
	// on the 21st on (still).
	high := func(at time.Time) bool {
		return (!at.Before(local(20, 10, 0)) && at.Before(local(20, 11, 0))) ||
			(!at.Before(local(20, 23, 30)) && at.Before(local(21, 0, 20))) || !at.Before(local(21, 11, 30))
	}
	var seq uint64 = 1
	var batch []telemetry.Reading
	flush := func(stored time.Time) {
		if len(batch) == 0 {
			return
		}
		b := &telemetry.Batch{Gateway: "gw1", Site: "north", Stream: "s", FirstSeq: seq, Readings: batch}
		reg.ObserveBatch(b)
		if err := e.Observe(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if err := st.WriteBatch(context.Background(), b, nil, store.Commit{}.With(0, seq, seq+uint64(len(batch))-1), stored); err != nil {
			t.Fatal(err)
		}
		for _, r := range batch {
			g.delay[r.Time] = stored.Sub(r.Time)
		}
		seq += uint64(len(batch))
		batch = nil
	}
	i := 0
	for at := local(19, 20, 0); at.Before(statsNow); at = at.Add(10 * time.Minute) {
		i++
		if at.Day() == 20 && at.Hour() == 3 {
			continue // six missing
		}
		r := telemetry.Reading{Device: "d1", Metric: "x", Unit: "u", Value: 20 + float64(i%7), Time: at}
		if high(at) {
			r.Value = 70 + float64(i%3)
		}
		if at.Equal(local(20, 5, 0)) || at.Equal(local(20, 6, 0)) {
			r.Value, r.Quality = -9999, telemetry.Bad
		}
		batch = append(batch, r)
		g.written = append(g.written, r)
		if len(batch) == 3 {
			flush(at.Add(time.Duration(30+i%50) * time.Second))
		}
	}
	flush(statsNow)
	// d2, no interval: two readings on the 20th, written without a batch.
	if err := st.Write(context.Background(), "gw1", "north", []telemetry.Reading{
		{Device: "d2", Metric: "y", Unit: "v", Value: 1, Time: local(20, 1, 0)},
		{Device: "d2", Metric: "y", Unit: "v", Value: 3, Time: local(20, 2, 0)}}); err != nil {
		t.Fatal(err)
	}
	a := New(st, reg, slog.New(slog.DiscardHandler), prometheus.NewRegistry()).WithAlerts(e).WithTimezone(shanghai)
	a.now = func() time.Time { return statsNow }
	g.api = a
	mux := http.NewServeMux()
	a.Register(mux)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *statsRig) get(t *testing.T, query string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.Get(g.srv.URL + "/api/v1/stats?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header
}

// want computes d1's row for [start, end) from what was written.
func (g *statsRig) want(start, end time.Time, expected int64) StatsRow {
	row := StatsRow{Device: "d1", Metric: "x", Unit: "u", PeriodStart: start, PeriodEnd: end, Interval: "10m0s",
		Expected: &expected}
	var sum, dsum float64
	for _, r := range g.written {
		if r.Time.Before(start) || !r.Time.Before(end) {
			continue
		}
		row.Received++
		row.Delays++
		d := g.delay[r.Time].Seconds()
		dsum += d
		if row.DelayMax == nil || d > *row.DelayMax {
			row.DelayMax = &d
		}
		if r.Quality != telemetry.Good {
			continue
		}
		row.Good++
		v := r.Value
		sum += v
		if row.Min == nil || v < *row.Min {
			row.Min = &v
		}
		if row.Max == nil || v > *row.Max {
			row.Max = &v
		}
	}
	mean, dmean := sum/float64(row.Good), dsum/float64(row.Delays)
	c, v := float64(row.Received)/float64(expected), float64(row.Good)/float64(row.Received)
	row.Mean, row.DelayMean, row.Completeness, row.Validity = &mean, &dmean, &c, &v
	return row
}

func sameFloat(a, b *float64) bool {
	return (a == nil) == (b == nil) && (a == nil || math.Abs(*a-*b) <= 1e-9*math.Max(1, math.Abs(*b)))
}

func checkRow(t *testing.T, got, want StatsRow) {
	t.Helper()
	if got.Device != want.Device || got.Metric != want.Metric || got.Unit != want.Unit ||
		!got.PeriodStart.Equal(want.PeriodStart) || !got.PeriodEnd.Equal(want.PeriodEnd) || got.Interval != want.Interval ||
		(got.Expected == nil) != (want.Expected == nil) || (got.Expected != nil && *got.Expected != *want.Expected) ||
		got.Received != want.Received || got.Good != want.Good || got.Delays != want.Delays {
		t.Fatalf("row %+v\nwant %+v", got, want)
	}
	for _, f := range []struct {
		name      string
		got, want *float64
	}{{"completeness", got.Completeness, want.Completeness}, {"validity", got.Validity, want.Validity},
		{"delay_mean", got.DelayMean, want.DelayMean}, {"delay_max", got.DelayMax, want.DelayMax},
		{"min", got.Min, want.Min}, {"mean", got.Mean, want.Mean}, {"max", got.Max, want.Max}} {
		if !sameFloat(f.got, f.want) {
			t.Errorf("%s %s: %v, want %v", got.PeriodStart.Format(time.DateOnly), f.name, f.got, f.want)
		}
	}
	if len(got.Exceedances) != len(want.Exceedances) {
		t.Fatalf("%s exceedances %+v, want %+v", got.PeriodStart.Format(time.DateOnly), got.Exceedances, want.Exceedances)
	}
	for i := range want.Exceedances {
		if got.Exceedances[i] != want.Exceedances[i] {
			t.Errorf("%s exceedances %+v, want %+v", got.PeriodStart.Format(time.DateOnly), got.Exceedances, want.Exceedances)
		}
	}
}

// TestStatsDays: days cut at Shanghai's midnight; expected from the
// declared interval, from the first reading on and up to now; validity,
// delays and good values from what was stored; firings clipped to each
// day, the open one counted up to now.
func TestStatsDays(t *testing.T) {
	g := newStatsRig(t)
	code, body, _ := g.get(t, "station=gw1&device=d1&from=2026-11-18T16:00:00Z&to=2026-11-21T16:00:00Z")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var got StatsResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Timezone != "Asia/Shanghai" || got.Period != "day" || !got.From.Equal(local(19, 0, 0)) || !got.To.Equal(local(22, 0, 0)) {
		t.Fatalf("header %+v", got)
	}
	if len(got.Rows) != 3 {
		t.Fatalf("%d rows, want the 19th, 20th and 21st: %s", len(got.Rows), body)
	}
	want := []StatsRow{g.want(local(19, 0, 0), local(20, 0, 0), 24), g.want(local(20, 0, 0), local(21, 0, 0), 144),
		g.want(local(21, 0, 0), local(22, 0, 0), 72)}
	want[0].Exceedances = []Exceedance{{Rule: "x_high", Count: 0, Seconds: 0}}
	want[1].Exceedances = []Exceedance{{Rule: "x_high", Count: 2, Seconds: 3600 + 1800}}
	want[2].Exceedances = []Exceedance{{Rule: "x_high", Count: 2, Seconds: 1200 + 1800}}
	// The stored rows' own check: the 20th lost six readings and two are bad.
	if want[1].Received != 138 || want[1].Good != 136 {
		t.Fatalf("the rig wrote %d readings on the 20th, %d good", want[1].Received, want[1].Good)
	}
	for i := range want {
		checkRow(t, got.Rows[i], want[i])
	}
	if got.Rows[0].PeriodStart.Format(time.RFC3339) != "2026-11-19T00:00:00+08:00" {
		t.Errorf("period start written %s, want in the bureau's zone", got.Rows[0].PeriodStart.Format(time.RFC3339))
	}
}

// TestStatsWeeksMonthsAndNoInterval: a week and a month hold the series
// from its first reading to now; a device with no declared interval has
// no expected count and no completeness, and its delays are not known.
func TestStatsWeeksMonthsAndNoInterval(t *testing.T) {
	g := newStatsRig(t)
	for _, c := range []struct {
		period     string
		start, end time.Time
	}{{"week", local(16, 0, 0), local(23, 0, 0)}, {"month", local(1, 0, 0), time.Date(2026, 12, 1, 0, 0, 0, 0, shanghai)}} {
		t.Run(c.period, func(t *testing.T) {
			code, body, _ := g.get(t, "station=gw1&period="+c.period+"&from=2026-11-20T00:00:00Z")
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			var got StatsResponse
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Rows) != 2 {
				t.Fatalf("rows %s, want d1/x and d2/y", body)
			}
			want := g.want(c.start, c.end, 240)
			want.Exceedances = []Exceedance{{Rule: "x_high", Count: 3, Seconds: 3600 + 3000 + 1800}}
			checkRow(t, got.Rows[0], want)
			d2 := got.Rows[1]
			if d2.Device != "d2" || d2.Expected != nil || d2.Completeness != nil || d2.Interval != "" || d2.Received != 2 ||
				d2.Delays != 0 || d2.DelayMean != nil || *d2.Validity != 1 || *d2.Mean != 2 || len(d2.Exceedances) != 0 {
				t.Fatalf("d2 row %+v", d2)
			}
		})
	}
}

// TestStatsCSV: the CSV holds the JSON's rows, with units in the header.
func TestStatsCSV(t *testing.T) {
	g := newStatsRig(t)
	q := "station=gw1&from=2026-11-18T16:00:00Z"
	_, body, _ := g.get(t, q)
	var js StatsResponse
	if err := json.Unmarshal(body, &js); err != nil {
		t.Fatal(err)
	}
	code, body, h := g.get(t, q+"&format=csv")
	if code != 200 || h.Get("Content-Type") != "text/csv; charset=utf-8" ||
		h.Get("Content-Disposition") != `attachment; filename="fieldwatch-stats-gw1-day-20261119-20261122.csv"` {
		t.Fatalf("status %d, headers %v: %s", code, h, body)
	}
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := strings.Join(recs[0], ",")
	if head != "period_start,period_end,station,device,metric,unit,interval_s,expected,received,good,completeness_%,validity_%,"+
		"delay_mean_s,delay_max_s,min,mean,max,exceedances_x_high,exceedance_s_x_high" {
		t.Fatalf("header %s", head)
	}
	if len(recs)-1 != len(js.Rows) {
		t.Fatalf("%d CSV rows, %d JSON rows", len(recs)-1, len(js.Rows))
	}
	num := func(s string) *float64 {
		if s == "" {
			return nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	pct := func(v *float64) *float64 {
		if v == nil {
			return nil
		}
		p := math.Round(*v*10000) / 100
		return &p
	}
	for i, row := range js.Rows {
		r := recs[i+1]
		if r[0] != row.PeriodStart.Format(time.RFC3339) || r[3] != row.Device || r[4] != row.Metric || r[5] != row.Unit ||
			r[8] != strconv.FormatInt(row.Received, 10) || r[9] != strconv.FormatInt(row.Good, 10) {
			t.Fatalf("CSV row %v, JSON %+v", r, row)
		}
		for j, v := range []*float64{pct(row.Completeness), pct(row.Validity), row.DelayMean, row.DelayMax, row.Min, row.Mean, row.Max} {
			if !sameFloat(num(r[10+j]), v) {
				t.Errorf("CSV row %d column %s: %q, JSON %v", i, recs[0][10+j], r[10+j], v)
			}
		}
		if len(row.Exceedances) == 1 {
			x := row.Exceedances[0]
			if r[17] != strconv.Itoa(x.Count) || !sameFloat(num(r[18]), &x.Seconds) {
				t.Errorf("CSV row %d exceedances %v, JSON %+v", i, r[17:], x)
			}
		} else if r[17] != "" || r[18] != "" {
			t.Errorf("CSV row %d: exceedances %v for a series no rule judges", i, r[17:])
		}
	}
}

// TestStatsRefusesBadParameters: every parameter is checked, and a refusal
// is a 400 naming it.
func TestStatsRefusesBadParameters(t *testing.T) {
	g := newStatsRig(t)
	for _, c := range []struct{ query, param string }{
		{"", "station"},
		{"station=gw%201", "station"},
		{"station=gw1&device=a/b", "device"},
		{"station=gw1&metric=", "metric"},
		{"station=gw1&period=year", "period"},
		{"station=gw1&period=Day", "period"},
		{"station=gw1&format=xlsx", "format"},
		{"station=gw1&from=yesterday", "from"},
		{"station=gw1&to=2300-01-01T00:00:00Z", "to"},
		{"station=gw1&from=2026-11-21T00:00:00Z&to=2026-11-20T00:00:00Z", "from"},
		{"station=gw1&from=2020-01-01T00:00:00Z", "from"},
		{"station=gw1&every=1h", "every"},
		{"station=gw1&station=gw2", "station"},
	} {
		t.Run(c.query, func(t *testing.T) {
			code, body, _ := g.get(t, c.query)
			var e Error
			if err := json.Unmarshal(body, &e); err != nil || code != 400 || e.Param != c.param || e.Msg == "" {
				t.Fatalf("status %d %s, want 400 naming %s", code, body, c.param)
			}
		})
	}
}

// FuzzParseStats: any query is answered, and one that is taken gives whole
// rising periods that start at midnight in the zone and cover the range.
func FuzzParseStats(f *testing.F) {
	for _, s := range []string{"station=gw1", "station=gw1&period=week&from=-400h", "station=gw1&period=month&from=0&to=86400",
		"station=gw1&from=2026-11-20T23:59:59.999999999+08:00&to=2026-11-21T00:00:00.000000001+08:00", "station=a&format=csv"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		s, err := parseStats(q, statsNow, shanghai)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Status != 400 || e.Msg == "" || (e.Param == "" && !q.Has("")) {
				t.Fatalf("%q: %v is not a 400 naming a parameter", raw, err)
			}
			return
		}
		if len(s.bounds) < 2 || len(s.bounds) > maxStatsPeriods+1 || !s.from.Equal(s.bounds[0]) || !s.to.Equal(s.bounds[len(s.bounds)-1]) {
			t.Fatalf("%q: bounds %v, from %v to %v", raw, s.bounds, s.from, s.to)
		}
		for i, b := range s.bounds {
			l := b.In(shanghai)
			if l.Hour() != 0 || l.Minute() != 0 || l.Second() != 0 || l.Nanosecond() != 0 ||
				(s.period == "week" && l.Weekday() != time.Monday) || (s.period == "month" && l.Day() != 1) {
				t.Fatalf("%q: bound %d is %v", raw, i, l)
			}
			if i > 0 && !s.bounds[i-1].Before(b) {
				t.Fatalf("%q: bounds do not rise at %d", raw, i)
			}
		}
	})
}

// TestStatsNeedsViewer: with tokens, statistics (JSON and CSV) need a
// viewer's token, as every reading endpoint.
func TestStatsNeedsViewer(t *testing.T) {
	g := newStatsRig(t)
	secret, hash := apitoken.New()
	set, err := apitoken.Parse("tokens.yaml", []byte("tokens:\n  - {name: analyst, role: viewer, sha256: "+hash+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	g.api.WithAccess(set, apitoken.None)
	for _, c := range []struct {
		name, token string
		want        int
	}{{"no token", "", 401}, {"unknown token", "fwt_nope", 401}, {"viewer", secret, 200}} {
		for _, format := range []string{"json", "csv"} {
			t.Run(c.name+"/"+format, func(t *testing.T) {
				req, _ := http.NewRequest("GET", g.srv.URL+"/api/v1/stats?station=gw1&format="+format, nil)
				if c.token != "" {
					req.Header.Set("Authorization", "Bearer "+c.token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != c.want {
					t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
				}
			})
		}
	}
}
