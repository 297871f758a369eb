package browser

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	neturl "net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// The statistics panel (js/stats.js) in #stats.
const (
	// statsCaptureJS keeps every answer of /api/v1/stats the page receives
	// in window.fwStats, so the table can be compared with the very answer
	// it was drawn from.
	statsCaptureJS = `(() => {
  window.fwStats = [];
  const f = window.fetch;
  window.fetch = async (...args) => {
    const r = await f(...args);
    if (String(args[0]).startsWith("/api/v1/stats?")) window.fwStats.push({ url: String(args[0]), body: await r.clone().json() });
    return r;
  };
  return true;
})()`
	// statsPeriodSel is the period button %q.
	statsPeriodSel = `#stats button[data-period=%q]`
	// statsShownJS is truthy once the table shows period %q drawn from a
	// captured answer for it: then it is that answer and the table.
	statsShownJS = `(() => {
  const p = %q;
  const got = (window.fwStats || []).filter((x) => new URLSearchParams(x.url.split("?")[1]).get("period") === p);
  const table = document.querySelector("#stats table.stats");
  const pressed = document.querySelector("#stats button[data-period=" + JSON.stringify(p) + "]");
  if (!got.length || !table || !pressed || pressed.getAttribute("aria-pressed") !== "true") return null;
  return { answer: got[got.length - 1].body, table: ` + statsTableJS + ` };
})()`
	// statsTableJS is the table as shown: each heading's column and
	// aria-sort, and each row's series, period and cells (the value behind
	// each, data-value, and its text).
	statsTableJS = `(() => {
  const table = document.querySelector("#stats table.stats");
  if (!table) return null;
  return {
    heads: [...table.querySelectorAll("thead th")].map((th) => ({ col: th.dataset.col, sort: th.getAttribute("aria-sort"),
      text: th.textContent.trim() })),
    rows: [...table.querySelectorAll("tbody tr")].map((tr) => ({ device: tr.dataset.device, metric: tr.dataset.metric,
      period: tr.dataset.period, cells: Object.fromEntries([...tr.querySelectorAll("td")].map((td) =>
        [td.dataset.col, { value: td.dataset.value, text: td.textContent.trim() }])) })),
  };
})()`
	// statsExportJS fetches the panel's CSV link from the page.
	statsExportJS = `(async () => {
  const a = document.querySelector("#stats-export");
  const r = await fetch(a.href);
  return { href: a.getAttribute("href"), download: a.hasAttribute("download"), status: r.status,
    type: r.headers.get("Content-Type") || "", disposition: r.headers.get("Content-Disposition") || "", body: await r.text() };
})()`
)

// statsAnswer is GET /api/v1/stats as the tests read it.
type statsAnswer struct {
	Station  string `json:"station"`
	Period   string `json:"period"`
	Timezone string `json:"timezone"`
	Rows     []struct {
		Device       string   `json:"device"`
		Metric       string   `json:"metric"`
		Unit         string   `json:"unit"`
		PeriodStart  string   `json:"period_start"`
		PeriodEnd    string   `json:"period_end"`
		Expected     *int64   `json:"expected"`
		Received     int64    `json:"received"`
		Good         int64    `json:"good"`
		Completeness *float64 `json:"completeness"`
		Validity     *float64 `json:"validity"`
		DelayMean    *float64 `json:"delay_mean"`
		DelayMax     *float64 `json:"delay_max"`
		Min          *float64 `json:"min"`
		Mean         *float64 `json:"mean"`
		Max          *float64 `json:"max"`
		Exceedances  []struct {
			Rule    string  `json:"rule"`
			Count   int     `json:"count"`
			Seconds float64 `json:"duration_s"`
		} `json:"exceedances"`
	} `json:"rows"`
}

type statsCell struct{ Value, Text string }

type statsTable struct {
	Heads []struct{ Col, Sort, Text string }
	Rows  []struct {
		Device, Metric, Period string
		Cells                  map[string]statsCell
	}
}

// compareStatsTable says how the table differs from the answer it was drawn
// from: the same rows, each cell's value the answer's number exactly, and
// the percentages shown as the answer's to one decimal.
func compareStatsTable(answer statsAnswer, table statsTable) []string {
	var diffs []string
	if len(table.Rows) != len(answer.Rows) {
		return []string{fmt.Sprintf("the table has %d rows, the answer %d", len(table.Rows), len(answer.Rows))}
	}
	num := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'g', -1, 64)
	}
	for _, a := range answer.Rows {
		i := slices.IndexFunc(table.Rows, func(r struct {
			Device, Metric, Period string
			Cells                  map[string]statsCell
		}) bool {
			return r.Device == a.Device && r.Metric == a.Metric && r.Period == a.PeriodStart
		})
		if i < 0 {
			diffs = append(diffs, fmt.Sprintf("no row for %s/%s %s", a.Device, a.Metric, a.PeriodStart))
			continue
		}
		cells := table.Rows[i].Cells
		expected := ""
		if a.Expected != nil {
			expected = strconv.FormatInt(*a.Expected, 10)
		}
		count, secs := 0, 0.0
		for _, x := range a.Exceedances {
			count += x.Count
			secs += x.Seconds
		}
		want := map[string]string{"expected": expected, "received": strconv.FormatInt(a.Received, 10),
			"completeness": num(a.Completeness), "validity": num(a.Validity), "delay_mean": num(a.DelayMean),
			"delay_max": num(a.DelayMax), "min": num(a.Min), "mean": num(a.Mean), "max": num(a.Max),
			"exceedances": strconv.Itoa(count), "exceed_s": strconv.FormatFloat(secs, 'g', -1, 64)}
		for col, w := range want {
			got := cells[col].Value
			if got == w {
				continue
			}
			// JavaScript and Go write some floats differently (1e21 and
			// up, exponents); compare the numbers then.
			g, err1 := strconv.ParseFloat(got, 64)
			x, err2 := strconv.ParseFloat(w, 64)
			if err1 != nil || err2 != nil || g != x {
				diffs = append(diffs, fmt.Sprintf("%s/%s %s %s: the table holds %q, the API %q", a.Device, a.Metric, a.PeriodStart, col, got, w))
			}
		}
		for col, v := range map[string]*float64{"completeness": a.Completeness, "validity": a.Validity} {
			shown := "—"
			if v != nil {
				shown = strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
			}
			if cells[col].Text != shown {
				diffs = append(diffs, fmt.Sprintf("%s/%s %s %s shows %q, the API's is %s", a.Device, a.Metric, a.PeriodStart, col,
					cells[col].Text, shown))
			}
		}
	}
	return diffs
}

// TestStatisticsEqualAPI: the station's statistics table shows exactly the
// numbers of GET /api/v1/stats, per week and per day; the API's day counts
// and extremes are those of the stored samples; the heat alert's firing is
// an exceedance; a click on a heading sorts by it (aria-sort says how);
// the CSV link gives the same rows; at 390 px the page does not scroll
// sideways; the headings follow the language.
func TestStatisticsEqualAPI(t *testing.T) {
	s := StartStack(t)
	p := OpenPage(t, s.URL, 1280, 900)
	raiseHeatAlert(t, s, p)
	// Stop farm-north so that its counts hold still, then wait until the
	// cloud has stored what the gateway sent.
	s.StopGateway(t, "farm-north")
	last := int64(-1)
	testenv.Eventually(t, "farm-north's counts hold still", waitLong, func() bool {
		var a statsAnswer
		if err := testenv.GetJSON(s.URL+"api/v1/stats?station=farm-north", &a); err != nil {
			return false
		}
		n := int64(0)
		for _, r := range a.Rows {
			n += r.Received
		}
		same := n == last
		last = n
		return same
	})
	selectStation(t, p, "farm-north")
	Eval[bool](t, p, statsCaptureJS)

	shown := func(period string) (statsAnswer, statsTable) {
		t.Helper()
		p.Click(t, fmt.Sprintf(statsPeriodSel, period))
		raw := p.WaitJS(t, "the statistics table by "+period, fmt.Sprintf(statsShownJS, period), waitLong)
		var got struct {
			Answer statsAnswer
			Table  statsTable
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got.Answer.Station != "farm-north" || got.Answer.Period != period || got.Answer.Timezone != "Asia/Shanghai" {
			t.Fatalf("the page asked for %s %s in %s", got.Answer.Station, got.Answer.Period, got.Answer.Timezone)
		}
		for _, d := range compareStatsTable(got.Answer, got.Table) {
			t.Error(d)
		}
		return got.Answer, got.Table
	}
	shown("week")
	day, _ := shown("day")

	// The API's day rows against the stored samples of each series.
	heat := false
	for _, r := range day.Rows {
		from, err1 := time.Parse(time.RFC3339, r.PeriodStart)
		to, err2 := time.Parse(time.RFC3339, r.PeriodEnd)
		if err1 != nil || err2 != nil {
			t.Fatalf("period %s … %s", r.PeriodStart, r.PeriodEnd)
		}
		var series struct {
			Samples []struct {
				Value   *float64 `json:"value"`
				Quality string   `json:"quality"`
			} `json:"samples"`
		}
		q := neturl.Values{"station": {"farm-north"}, "device": {r.Device}, "metric": {r.Metric},
			"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
		if err := testenv.GetJSON(s.URL+"api/v1/series?"+q.Encode(), &series); err != nil {
			t.Fatal(err)
		}
		var good int64
		var lo, hi, sum float64 = math.Inf(1), math.Inf(-1), 0
		for _, x := range series.Samples {
			if x.Quality == "good" {
				good++
				if x.Value != nil {
					lo, hi, sum = math.Min(lo, *x.Value), math.Max(hi, *x.Value), sum+*x.Value
				}
			}
		}
		if int64(len(series.Samples)) != r.Received || good != r.Good || r.Received == 0 {
			t.Errorf("%s/%s %s: received %d, good %d; the store holds %d samples, %d good", r.Device, r.Metric, r.PeriodStart,
				r.Received, r.Good, len(series.Samples), good)
		}
		if r.Min == nil || *r.Min != lo || *r.Max != hi || math.Abs(*r.Mean-sum/float64(good)) > 1e-9*math.Abs(*r.Mean) {
			t.Errorf("%s/%s %s: min/mean/max %v/%v/%v; the store's good values %v/%v/%v", r.Device, r.Metric, r.PeriodStart,
				r.Min, r.Mean, r.Max, lo, sum/float64(good), hi)
		}
		// Every reading came through the ingestor: each has its delay, and
		// every device declared its interval (1 s).
		if r.DelayMax == nil || *r.DelayMax < *r.DelayMean || *r.DelayMean < 0 || r.Expected == nil || *r.Expected == 0 {
			t.Errorf("%s/%s %s: delays mean %v max %v, expected %v", r.Device, r.Metric, r.PeriodStart, r.DelayMean, r.DelayMax, r.Expected)
		}
		for _, x := range r.Exceedances {
			if r.Device == "air-mast" && r.Metric == "air_temperature" && x.Rule == heatRule && x.Count == 1 && x.Seconds > 0 {
				heat = true
			}
		}
	}
	if !heat {
		t.Errorf("no exceedance of %s on air-mast/air_temperature among the day's rows", heatRule)
	}

	// Sorting: by received, rising then falling; by device.
	for _, c := range []struct {
		col, sort string
	}{{"received", "ascending"}, {"received", "descending"}, {"device", "ascending"}} {
		p.Click(t, fmt.Sprintf(`#stats th[data-col=%q] button`, c.col))
		raw := p.WaitJS(t, "sorted by "+c.col, fmt.Sprintf(`(() => { const th = document.querySelector('#stats th[data-col=%q]');
  return th && th.getAttribute("aria-sort") === %q ? %s : null; })()`, c.col, c.sort, statsTableJS), waitShort)
		var tb statsTable
		if err := json.Unmarshal(raw, &tb); err != nil {
			t.Fatal(err)
		}
		for _, h := range tb.Heads {
			if want := map[bool]string{true: c.sort, false: "none"}[h.Col == c.col]; h.Sort != want {
				t.Errorf("sorted by %s %s: heading %s has aria-sort %q", c.col, c.sort, h.Col, h.Sort)
			}
		}
		var keys []string
		for _, r := range tb.Rows {
			keys = append(keys, r.Cells[c.col].Value)
		}
		cmp := func(a, b string) int {
			if c.col == "received" {
				x, _ := strconv.Atoi(a)
				y, _ := strconv.Atoi(b)
				return x - y
			}
			return strings.Compare(a, b)
		}
		sorted := slices.IsSortedFunc(keys, cmp)
		if c.sort == "descending" {
			sorted = slices.IsSortedFunc(keys, func(a, b string) int { return cmp(b, a) })
		}
		if !sorted || len(keys) != len(day.Rows) {
			t.Errorf("sorted by %s %s: %v", c.col, c.sort, keys)
		}
		for _, d := range compareStatsTable(day, tb) {
			t.Errorf("after sorting by %s: %s", c.col, d)
		}
	}

	// The CSV link, between two answers of the API: what does not move
	// with the clock equals both; what does (expected, the time an alert
	// still firing has fired) lies between them.
	var before, after statsAnswer
	if err := testenv.GetJSON(s.URL+"api/v1/stats?station=farm-north&period=day", &before); err != nil {
		t.Fatal(err)
	}
	type download struct {
		Href, Type, Disposition, Body string
		Download                      bool
		Status                        int
	}
	got := EvalAsync[download](t, p, statsExportJS)
	if err := testenv.GetJSON(s.URL+"api/v1/stats?station=farm-north&period=day", &after); err != nil {
		t.Fatal(err)
	}
	if got.Status != 200 || !strings.HasPrefix(got.Type, "text/csv") || !got.Download || !strings.Contains(got.Disposition, "attachment") ||
		!strings.Contains(got.Href, "format=csv") || !strings.Contains(got.Href, "period=day") {
		t.Fatalf("the CSV link %q (download %v) answered %d %q %q", got.Href, got.Download, got.Status, got.Type, got.Disposition)
	}
	recs, err := csv.NewReader(strings.NewReader(got.Body)).ReadAll()
	if err != nil || len(recs) != len(before.Rows)+1 || len(after.Rows) != len(before.Rows) {
		t.Fatalf("CSV %v, %d rows; the API %d then %d:\n%.600s", err, len(recs)-1, len(before.Rows), len(after.Rows), got.Body)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, h := range []string{"period_start", "device", "metric", "unit", "expected", "received", "good", "completeness_%",
		"validity_%", "delay_mean_s", "delay_max_s", "min", "mean", "max", "exceedances_" + heatRule, "exceedance_s_" + heatRule} {
		if _, ok := col[h]; !ok {
			t.Fatalf("CSV header %q lacks %s", recs[0], h)
		}
	}
	f := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'g', -1, 64)
	}
	between := func(x string, lo, hi float64) bool {
		v, err := strconv.ParseFloat(x, 64)
		return err == nil && lo <= v && v <= hi
	}
	for i, b := range before.Rows {
		a, r := after.Rows[i], recs[i+1]
		fixed := map[string]string{"period_start": b.PeriodStart, "device": b.Device, "metric": b.Metric, "unit": b.Unit,
			"received": strconv.FormatInt(b.Received, 10), "good": strconv.FormatInt(b.Good, 10),
			"delay_mean_s": f(b.DelayMean), "delay_max_s": f(b.DelayMax), "min": f(b.Min), "mean": f(b.Mean), "max": f(b.Max)}
		if b.Validity != nil {
			fixed["validity_%"] = strconv.FormatFloat(*b.Validity*100, 'f', 2, 64)
		}
		for h, w := range fixed {
			if r[col[h]] != w {
				t.Errorf("CSV row %d %s: %q, the API %q", i, h, r[col[h]], w)
			}
		}
		if !between(r[col["expected"]], float64(*b.Expected), float64(*a.Expected)) {
			t.Errorf("CSV row %d expected %s, the API %d then %d", i, r[col["expected"]], *b.Expected, *a.Expected)
		}
		for j, x := range b.Exceedances {
			y := a.Exceedances[j]
			if r[col["exceedances_"+x.Rule]] != strconv.Itoa(x.Count) || !between(r[col["exceedance_s_"+x.Rule]], x.Seconds, y.Seconds) {
				t.Errorf("CSV row %d %s: %s times, %s s; the API %d, %v … %v s", i, x.Rule, r[col["exceedances_"+x.Rule]],
					r[col["exceedance_s_"+x.Rule]], x.Count, x.Seconds, y.Seconds)
			}
		}
	}

	// A phone: the wide table scrolls in its own box, the page does not.
	p.SetViewport(t, 390, 844)
	m := Eval[struct {
		ScrollWidth int `json:"scrollWidth"`
		InnerWidth  int `json:"innerWidth"`
		Wide        []string
	}](t, p, measureJS)
	if m.ScrollWidth > m.InnerWidth {
		t.Errorf("at 390 px the page scrolls sideways: %d > %d; too wide: %s", m.ScrollWidth, m.InnerWidth, strings.Join(m.Wide, ", "))
	}
	if !Eval[bool](t, p, `(() => { const b = document.querySelector("#stats .scroll-x");
  return b.scrollWidth > b.clientWidth && getComputedStyle(b).overflowX === "auto"; })()`) {
		t.Errorf("at 390 px the statistics table does not scroll in its box")
	}

	// Chinese headings.
	p.Click(t, fmt.Sprintf(langSel, "zh"))
	p.WaitJS(t, "the headings in Chinese", `document.querySelector('#stats th[data-col="completeness"]').textContent.startsWith("完整率")`, waitShort)
}
