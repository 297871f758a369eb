package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Export limits and pacing. An export reads the store a page at a time,
// each page its own short query (so the embedded store's single connection
// is free for ingest between pages), writes and flushes it, and gives the
// connection exportWriteWindow more to take it: the server's WriteTimeout
// bounds a page, not the whole export.
const (
	// maxExportSeries bounds the series of a station-wide export (no
	// device or metric, or only one of them).
	maxExportSeries = 1000
	// exportBucketPage is how many buckets wide one aggregated query is.
	exportBucketPage = 1_000
	// exportWriteWindow is the time the client gets to take one page.
	exportWriteWindow = 60 * time.Second
	// exportQueryTimeout bounds one page's store query.
	exportQueryTimeout = 30 * time.Second
)

// exportPage is how many raw samples one store query returns (a variable
// for tests).
var exportPage = 10_000

// exportRequest is a checked /api/v1/export request.
type exportRequest struct {
	station, device, metric string
	from, to                time.Time
	every                   time.Duration
	jsonl                   bool
}

func (a *API) parseExport(r *http.Request) (*exportRequest, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "station", "device", "metric", "from", "to", "format", "every", "points"); err != nil {
		return nil, err
	}
	e := &exportRequest{station: q.Get("station"), device: q.Get("device"), metric: q.Get("metric")}
	if err := telemetry.CheckName("station", e.station); err != nil {
		return nil, badParam("station", "%v", err)
	}
	for param, v := range map[string]string{"device": e.device, "metric": e.metric} {
		if v == "" {
			continue
		}
		if err := telemetry.CheckName(param, v); err != nil {
			return nil, badParam(param, "%v", err)
		}
	}
	switch f := q.Get("format"); f {
	case "", "csv":
	case "jsonl":
		e.jsonl = true
	default:
		return nil, badParam("format", "%q is not csv or jsonl", f)
	}
	now := a.now()
	var err error
	if e.to, err = parseTime(q.Get("to"), now, now); err != nil {
		return nil, badParam("to", "%v", err)
	}
	if e.from, err = parseTime(q.Get("from"), e.to.Add(-24*time.Hour), now); err != nil {
		return nil, badParam("from", "%v", err)
	}
	if !e.from.Before(e.to) {
		return nil, badParam("from", "must be before to (%s)", e.to.Format(time.RFC3339))
	}
	// An export streams, so an explicit width is not bounded in buckets.
	if e.every, err = parseEvery(q.Get("every"), q.Get("points"), e.from, e.to, 0); err != nil {
		return nil, err
	}
	return e, nil
}

// seriesKey names one series of a station.
type seriesKey struct{ device, metric string }

// series lists what e exports: the one series it names, or those of the
// station (of its device, of its metric) with a sample since e.from.
func (a *API) exportSeries(ctx context.Context, e *exportRequest) ([]seriesKey, error) {
	if e.device != "" && e.metric != "" {
		return []seriesKey{{e.device, e.metric}}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, exportQueryTimeout)
	defer cancel()
	latest, err := a.store.Latest(ctx, e.station, e.from)
	if err != nil {
		return nil, err
	}
	seen := map[seriesKey]bool{}
	var out []seriesKey
	for _, sm := range latest {
		k := seriesKey{sm.Device, sm.Metric}
		if seen[k] || e.device != "" && k.device != e.device || e.metric != "" && k.metric != e.metric {
			continue
		}
		seen[k] = true
		out = append(out, k)
	}
	if len(out) > maxExportSeries {
		return nil, badParam("device", "station %s has %d series in this range, more than %d in one export; name a device or metric",
			e.station, len(out), maxExportSeries)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].device != out[j].device {
			return out[i].device < out[j].device
		}
		return out[i].metric < out[j].metric
	})
	return out, nil
}

// export streams samples, or buckets, as CSV or JSON lines.
func (a *API) export(w http.ResponseWriter, r *http.Request) {
	const endpoint = "export"
	ar := a.authorized(w, r, endpoint, apitoken.Viewer)
	if ar == nil {
		return
	}
	e, err := a.parseExport(ar)
	var series []seriesKey
	if err == nil {
		series, err = a.exportSeries(ar.Context(), e)
	}
	if err != nil {
		a.respond(w, endpoint, nil, err)
		return
	}
	name := fileName("fieldwatch", e.station, e.device, e.metric, e.from.UTC().Format("20060102T150405Z"),
		e.to.UTC().Format("20060102T150405Z"))
	h := w.Header()
	if e.jsonl {
		h.Set("Content-Type", "application/x-ndjson")
		name += ".jsonl"
	} else {
		h.Set("Content-Type", "text/csv; charset=utf-8")
		name += ".csv"
	}
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	a.requests.WithLabelValues(endpoint, "200").Inc()
	w.WriteHeader(http.StatusOK)

	x := &exporter{api: a, req: e, rc: http.NewResponseController(w), bw: bufio.NewWriterSize(w, 64<<10)}
	if err := x.run(ar.Context(), series); err != nil {
		if ar.Context().Err() != nil {
			a.log.Info("export stopped: the client went away", "station", e.station, "rows", x.rows)
			return
		}
		// The status is sent: cut the response off, so that the client
		// sees a broken transfer rather than a file that looks complete.
		a.log.Error("export failed", "station", e.station, "rows", x.rows, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// fileName joins the parts that are not empty with "-": a download's name.
func fileName(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "-")
}

// exporter writes one export.
type exporter struct {
	api  *API
	req  *exportRequest
	rc   *http.ResponseController
	bw   *bufio.Writer
	buf  []byte
	rows int64
}

func (x *exporter) run(ctx context.Context, series []seriesKey) error {
	if !x.req.jsonl {
		if x.req.every > 0 {
			x.bw.WriteString("time,station,device,metric,mean,min,max,count,unit\n")
		} else {
			x.bw.WriteString("time,station,device,metric,value,unit\n")
		}
	}
	if err := x.flush(); err != nil {
		return err
	}
	for _, k := range series {
		var err error
		if x.req.every > 0 {
			err = x.buckets(ctx, k)
		} else {
			err = x.samples(ctx, k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// page reads one page of a series.
func (x *exporter) page(ctx context.Context, q store.SeriesQuery) ([]store.Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, exportQueryTimeout)
	defer cancel()
	return x.api.store.Series(ctx, q)
}

// samples exports one series' raw samples, a page at a time. A page ends
// before its last instant (which the next page starts with), so samples
// of two series rows at one instant (a device whose unit changed) are not
// cut apart.
func (x *exporter) samples(ctx context.Context, k seriesKey) error {
	q := store.SeriesQuery{Gateway: x.req.station, Device: k.device, Metric: k.metric, From: x.req.from, To: x.req.to, Limit: exportPage}
	for {
		page, err := x.page(ctx, q)
		if err != nil {
			return err
		}
		full := len(page) == exportPage
		next := q.From
		if full {
			last := page[len(page)-1].Time
			n := len(page)
			for n > 0 && page[n-1].Time.Equal(last) {
				n--
			}
			if n == 0 { // a whole page at one instant: move on past it
				n, next = len(page), last.Add(time.Nanosecond)
			} else {
				next = last
			}
			page = page[:n]
		}
		for i := range page {
			x.row(&page[i])
		}
		if err := x.flush(); err != nil {
			return err
		}
		if !full {
			return nil
		}
		q.From = next
	}
}

// buckets exports one series' buckets, exportBucketPage wide at a time;
// every page but the first starts on the bucket grid, so a bucket is
// never split between pages.
func (x *exporter) buckets(ctx context.Context, k seriesKey) error {
	every := x.req.every
	q := store.SeriesQuery{Gateway: x.req.station, Device: k.device, Metric: k.metric, From: x.req.from, Every: every,
		Limit: store.MaxSeriesSamples}
	for q.From.Before(x.req.to) {
		start := time.Unix(0, q.From.UnixNano()-((q.From.UnixNano()%int64(every))+int64(every))%int64(every))
		span := time.Duration(math.MaxInt64)
		if every <= span/exportBucketPage {
			span = exportBucketPage * every
		}
		q.To = start.Add(span)
		if q.To.After(x.req.to) || !q.To.After(start) {
			q.To = x.req.to
		}
		page, err := x.page(ctx, q)
		if err != nil {
			return err
		}
		for i := range page {
			x.row(&page[i])
		}
		if err := x.flush(); err != nil {
			return err
		}
		q.From = q.To
	}
	return nil
}

// flush sends what is buffered and gives the connection time for the next
// page. A server without write deadlines (a test recorder) is fine.
func (x *exporter) flush() error {
	if err := x.bw.Flush(); err != nil {
		return err
	}
	if err := x.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if err := x.rc.SetWriteDeadline(time.Now().Add(exportWriteWindow)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// row writes one sample or bucket.
func (x *exporter) row(sm *store.Sample) {
	b := x.buf[:0]
	agg := x.req.every > 0
	if x.req.jsonl {
		b = append(b, `{"time":"`...)
		b = sm.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","station":`...)
		b = appendJSONString(b, x.req.station)
		b = append(b, `,"device":`...)
		b = appendJSONString(b, sm.Device)
		b = append(b, `,"metric":`...)
		b = appendJSONString(b, sm.Metric)
		if agg {
			b = append(b, `,"mean":`...)
			b = appendJSONFloat(b, sm.Value)
			b = append(b, `,"min":`...)
			b = appendJSONFloat(b, sm.Min)
			b = append(b, `,"max":`...)
			b = appendJSONFloat(b, sm.Max)
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, int64(sm.Count), 10)
		} else {
			b = append(b, `,"value":`...)
			b = appendJSONFloat(b, sm.Value)
		}
		b = append(b, `,"unit":`...)
		b = appendJSONString(b, sm.Unit)
		b = append(b, "}\n"...)
	} else {
		b = sm.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, ',')
		b = appendCSV(b, x.req.station)
		b = append(b, ',')
		b = appendCSV(b, sm.Device)
		b = append(b, ',')
		b = appendCSV(b, sm.Metric)
		b = append(b, ',')
		b = appendCSVFloat(b, sm.Value)
		if agg {
			b = append(b, ',')
			b = appendCSVFloat(b, sm.Min)
			b = append(b, ',')
			b = appendCSVFloat(b, sm.Max)
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(sm.Count), 10)
		}
		b = append(b, ',')
		b = appendCSV(b, sm.Unit)
		b = append(b, '\n')
	}
	x.bw.Write(b)
	x.buf = b
	x.rows++
}

// appendCSVFloat writes the shortest decimal that reads back as v exactly,
// or nothing for a missing value.
func appendCSVFloat(b []byte, v *float64) []byte {
	if v == nil {
		return b
	}
	return strconv.AppendFloat(b, *v, 'g', -1, 64)
}

func appendJSONFloat(b []byte, v *float64) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, *v, 'g', -1, 64)
}

// appendCSV writes s as a CSV field, quoted when it must be (RFC 4180).
func appendCSV(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ',' || c == '"' || c == '\n' || c == '\r' {
			plain = false
			break
		}
	}
	if plain {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// appendJSONString writes s as a JSON string (UTF-8 kept as it is).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', byte(c))
		case c < 0x20:
			b = fmt.Appendf(b, `\u%04x`, c)
		case c == utf8.RuneError:
			b = append(b, `\ufffd`...)
		default:
			b = utf8.AppendRune(b, c)
		}
	}
	return append(b, '"')
}
