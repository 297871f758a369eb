package api

import (
	"context"
	"encoding/csv"
	"errors"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"
	_ "time/tzdata" // the bureau's zone on a machine without /usr/share/zoneinfo

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/engine"
	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// DefaultTimezone is where statistics' days begin unless configured
// (WithTimezone): China's zone, UTC+8 all year.
const DefaultTimezone = "Asia/Shanghai"

// maxStatsPeriods bounds the periods of one statistics request (a year of
// days and some).
const maxStatsPeriods = 400

// WithTimezone makes statistics cut days, weeks and months in loc.
func (a *API) WithTimezone(loc *time.Location) *API {
	a.loc = loc
	return a
}

// statsRequest is a parsed /api/v1/stats request.
type statsRequest struct {
	station, device, metric string
	period                  string // day, week, month
	from, to                time.Time
	bounds                  []time.Time // the periods' starts, then the last one's end
	csv                     bool
}

// parseStats reads and checks the parameters; every refusal is a 400
// naming the parameter.
func parseStats(q url.Values, now time.Time, loc *time.Location) (*statsRequest, error) {
	if err := onlyParams(q, "station", "device", "metric", "from", "to", "period", "format"); err != nil {
		return nil, err
	}
	s := &statsRequest{station: q.Get("station"), device: q.Get("device"), metric: q.Get("metric"), period: q.Get("period")}
	if err := telemetry.CheckName("station", s.station); err != nil {
		return nil, badParam("station", "%v", err)
	}
	for param, v := range map[string]string{"device": s.device, "metric": s.metric} {
		if v == "" && !q.Has(param) {
			continue
		}
		if err := telemetry.CheckName(param, v); err != nil {
			return nil, badParam(param, "%v", err)
		}
	}
	periods := map[string]int{"day": 7, "week": 8, "month": 12} // how many by default
	if s.period == "" {
		s.period = "day"
	}
	n, ok := periods[s.period]
	if !ok {
		return nil, badParam("period", "%q is not day, week or month", s.period)
	}
	switch f := q.Get("format"); f {
	case "", "json":
	case "csv":
		s.csv = true
	default:
		return nil, badParam("format", "%q is not json or csv", f)
	}
	var err error
	if s.to, err = parseTime(q.Get("to"), now, now); err != nil {
		return nil, badParam("to", "%v", err)
	}
	// Default: the last n periods, the current one included.
	def := periodStart(s.to.Add(-1), s.period, loc)
	for i := 1; i < n; i++ {
		def = periodStart(def.Add(-1), s.period, loc)
	}
	if s.from, err = parseTime(q.Get("from"), def, now); err != nil {
		return nil, badParam("from", "%v", err)
	}
	if !s.from.Before(s.to) {
		return nil, badParam("from", "must be before to (%s)", s.to.Format(time.RFC3339))
	}
	// Whole periods: from back to its period's start, to on to the end of
	// the period it falls in.
	s.bounds = []time.Time{periodStart(s.from, s.period, loc)}
	for b := s.bounds[0]; b.Before(s.to); {
		b = nextPeriod(b, s.period, loc)
		s.bounds = append(s.bounds, b)
		if len(s.bounds) > maxStatsPeriods+1 {
			return nil, badParam("from", "the range holds more than %d %ss; ask for a shorter range or a longer period",
				maxStatsPeriods, s.period)
		}
	}
	s.from, s.to = s.bounds[0], s.bounds[len(s.bounds)-1]
	return s, nil
}

// periodStart is the start of the day, ISO week (Monday) or month that
// holds t, in loc.
func periodStart(t time.Time, period string, loc *time.Location) time.Time {
	l := t.In(loc)
	y, m, d := l.Date()
	switch period {
	case "month":
		return time.Date(y, m, 1, 0, 0, 0, 0, loc)
	case "week":
		back := (int(l.Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, loc)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// nextPeriod is the start of the period after the one that starts at b:
// by the calendar, so a day where clocks change is 23 or 25 hours long.
func nextPeriod(b time.Time, period string, loc *time.Location) time.Time {
	y, m, d := b.In(loc).Date()
	switch period {
	case "month":
		return time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	case "week":
		return time.Date(y, m, d+7, 0, 0, 0, 0, loc)
	}
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// StatsResponse is what /api/v1/stats returns.
type StatsResponse struct {
	Station  string     `json:"station"`
	Period   string     `json:"period"`
	Timezone string     `json:"timezone"`
	From     time.Time  `json:"from"`
	To       time.Time  `json:"to"`
	Rows     []StatsRow `json:"rows"`
}

// StatsRow is one series in one period.
type StatsRow struct {
	Device      string    `json:"device"`
	Metric      string    `json:"metric"`
	Unit        string    `json:"unit"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	// Interval is the device's declared interval ("" when it declared
	// none); Expected the readings it makes due in the period (nil without
	// an interval); Completeness Received ÷ Expected, Validity Good ÷
	// Received (nil when the divisor is 0).
	Interval     string   `json:"interval,omitempty"`
	Expected     *int64   `json:"expected"`
	Received     int64    `json:"received"`
	Good         int64    `json:"good"`
	Completeness *float64 `json:"completeness"`
	Validity     *float64 `json:"validity"`
	// DelayMean and DelayMax are seconds from acquisition to storage, of
	// the Delays readings whose storage time is known.
	Delays    int64    `json:"delays"`
	DelayMean *float64 `json:"delay_mean"`
	DelayMax  *float64 `json:"delay_max"`
	// Min, Mean and Max are of the good readings' values, in Unit.
	Min  *float64 `json:"min"`
	Mean *float64 `json:"mean"`
	Max  *float64 `json:"max"`
	// Exceedances are the times each rule fired on the series in the
	// period, clipped to it; rules that judge it and did not fire have 0.
	Exceedances []Exceedance `json:"exceedances"`
}

// Exceedance counts the firings of one rule in one period.
type Exceedance struct {
	Rule    string  `json:"rule"`
	Count   int     `json:"count"`
	Seconds float64 `json:"duration_s"`
}

func (a *API) stats(w http.ResponseWriter, r *http.Request) {
	const endpoint = "stats"
	ar := a.authorized(w, r, endpoint, apitoken.Viewer)
	if ar == nil {
		return
	}
	now := a.now()
	req, err := parseStats(ar.URL.Query(), now, a.loc)
	var resp *StatsResponse
	if err == nil {
		ctx, cancel := context.WithTimeout(ar.Context(), 30*time.Second)
		resp, err = a.computeStats(ctx, req, now)
		cancel()
	}
	if err != nil || !req.csv {
		a.respond(w, endpoint, resp, err)
		return
	}
	name := fileName("fieldwatch-stats", req.station, req.device, req.metric, req.period,
		req.from.In(a.loc).Format("20060102"), req.to.In(a.loc).Format("20060102")) + ".csv"
	a.startDownload(w, endpoint, "text/csv; charset=utf-8", name)
	if err := writeStatsCSV(w, resp); err != nil {
		a.log.Info("stats export not delivered", "station", req.station, "err", err)
	}
}

// computeStats joins the store's counts, the registry's intervals and the
// engine's firings into rows.
func (a *API) computeStats(ctx context.Context, req *statsRequest, now time.Time) (*StatsResponse, error) {
	series, err := a.store.Stats(ctx, store.StatsQuery{Gateway: req.station, Device: req.device, Metric: req.metric,
		Bounds: req.bounds})
	if err != nil {
		return nil, err
	}
	intervals := map[string]time.Duration{}
	site := ""
	if st, ok := a.registry.Station(req.station); ok {
		site = st.Site
		for _, d := range st.Devices {
			intervals[d.ID] = deviceInterval(d)
		}
	}
	var spans []engine.Span
	if a.alerts != nil {
		spans, err = a.alerts.FiringSpans(ctx, req.station, req.device, req.from, req.to)
		if errors.Is(err, engine.ErrTooManyTransitions) {
			return nil, badParam("from", "%v; ask for a shorter range", err)
		}
		if err != nil {
			return nil, err
		}
	}
	resp := &StatsResponse{Station: req.station, Period: req.period, Timezone: a.loc.String(),
		From: req.from.In(a.loc), To: req.to.In(a.loc), Rows: []StatsRow{}}
	for _, ss := range series {
		iv := intervals[ss.Device]
		var rules []string
		if a.alerts != nil {
			seen := map[string]bool{}
			for _, th := range a.alerts.Thresholds(req.station, site, ss.Device, ss.Metric) {
				if !seen[th.Rule] {
					seen[th.Rule] = true
					rules = append(rules, th.Rule)
				}
			}
			for _, sp := range spans {
				if sp.Labels["device"] == ss.Device && sp.Labels["metric"] == ss.Metric && !seen[sp.Rule] {
					seen[sp.Rule] = true
					rules = append(rules, sp.Rule)
				}
			}
			sort.Strings(rules)
		}
		for i, p := range ss.Periods {
			row := StatsRow{Device: ss.Device, Metric: ss.Metric, Unit: ss.Unit, PeriodStart: req.bounds[i].In(a.loc),
				PeriodEnd: req.bounds[i+1].In(a.loc), Received: p.Received, Good: p.Good, Delays: p.Delays,
				DelayMean: p.DelayMean, DelayMax: p.DelayMax, Min: p.Min, Mean: p.Mean, Max: p.Max,
				Exceedances: []Exceedance{}}
			due := expected(ss.First, req.bounds[i], req.bounds[i+1], now, iv)
			if iv > 0 {
				row.Interval = iv.String()
				row.Expected = &due
			}
			if p.Received == 0 && !maxTime(req.bounds[i], ss.First).Before(minTime(req.bounds[i+1], now)) {
				continue // before the series began, or a period still to come
			}
			row.Completeness = ratio(p.Received, row.Expected)
			row.Validity = ratio(p.Good, &p.Received)
			end := minTime(req.bounds[i+1], now)
			for _, rule := range rules {
				x := Exceedance{Rule: rule}
				for _, sp := range spans {
					if sp.Rule != rule || sp.Labels["device"] != ss.Device || sp.Labels["metric"] != ss.Metric {
						continue
					}
					spEnd := sp.End
					if sp.Open {
						spEnd = now
					}
					// Overlapping the period, or (a span of no length,
					// from late data) starting in it.
					if sp.Start.Before(end) && (spEnd.After(req.bounds[i]) || !sp.Start.Before(req.bounds[i])) {
						x.Count++
						x.Seconds += max(0, minTime(spEnd, end).Sub(maxTime(sp.Start, req.bounds[i])).Seconds())
					}
				}
				row.Exceedances = append(row.Exceedances, x)
			}
			resp.Rows = append(resp.Rows, row)
		}
	}
	return resp, nil
}

// deviceInterval is the interval a device declared, 0 if none.
func deviceInterval(d registry.Device) time.Duration {
	iv, err := time.ParseDuration(d.Interval)
	if err != nil || iv <= 0 {
		return 0
	}
	return iv
}

// expected is how many readings a series taken every iv makes due in
// [start, end): counted from the series' first reading, and only up to
// now. From the first reading on the count is ceil (that reading is due);
// elsewhere the nearest whole number, since where in the period the
// readings fall is not known. 0 without an interval.
func expected(first, start, end, now time.Time, iv time.Duration) int64 {
	if iv <= 0 {
		return 0
	}
	from, to := maxTime(start, first), minTime(end, now)
	if !from.Before(to) {
		return 0
	}
	span := to.Sub(from)
	if from.Equal(first) {
		return int64((span + iv - 1) / iv)
	}
	return int64(math.Round(float64(span) / float64(iv)))
}

func ratio(n int64, of *int64) *float64 {
	if of == nil || *of == 0 {
		return nil
	}
	v := float64(n) / float64(*of)
	return &v
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// writeStatsCSV writes the rows, one per series and period, with units in
// the header where they are fixed (%, s) and in the unit column for the
// values; each rule that appears has a count and a seconds column.
func writeStatsCSV(w http.ResponseWriter, resp *StatsResponse) error {
	var rules []string
	seen := map[string]bool{}
	for _, row := range resp.Rows {
		for _, x := range row.Exceedances {
			if !seen[x.Rule] {
				seen[x.Rule] = true
				rules = append(rules, x.Rule)
			}
		}
	}
	sort.Strings(rules)
	cw := csv.NewWriter(w)
	head := []string{"period_start", "period_end", "station", "device", "metric", "unit", "interval_s", "expected",
		"received", "good", "completeness_%", "validity_%", "delay_mean_s", "delay_max_s", "min", "mean", "max"}
	for _, r := range rules {
		head = append(head, "exceedances_"+r, "exceedance_s_"+r)
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	f := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'g', -1, 64)
	}
	pct := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v*100, 'f', 2, 64)
	}
	for _, row := range resp.Rows {
		iv, due := "", ""
		if row.Expected != nil {
			d, _ := time.ParseDuration(row.Interval)
			iv, due = strconv.FormatFloat(d.Seconds(), 'g', -1, 64), strconv.FormatInt(*row.Expected, 10)
		}
		rec := []string{row.PeriodStart.Format(time.RFC3339), row.PeriodEnd.Format(time.RFC3339), resp.Station, row.Device,
			row.Metric, row.Unit, iv, due, strconv.FormatInt(row.Received, 10), strconv.FormatInt(row.Good, 10),
			pct(row.Completeness), pct(row.Validity), f(row.DelayMean), f(row.DelayMax), f(row.Min), f(row.Mean), f(row.Max)}
		for _, r := range rules {
			count, secs := "", ""
			for _, x := range row.Exceedances {
				if x.Rule == r {
					count, secs = strconv.Itoa(x.Count), strconv.FormatFloat(x.Seconds, 'g', -1, 64)
				}
			}
			rec = append(rec, count, secs)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
