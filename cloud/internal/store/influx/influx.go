// Package influx is the Store on InfluxDB, through influxdb-client-go/v2: the
// v2 write API and Flux queries. It works with InfluxDB 2.x and with 1.8+
// when Flux is enabled (bucket "database/retention-policy").
//
// Layout: measurement = metric; tags gateway, site (when set), device, unit;
// fields value (float, omitted when not finite) and quality ("good",
// "uncertain", "bad"), clock (the clock quality), delay (seconds from
// acquisition to storage, when written by WriteBatch). A dashboard reads
//
//	from(bucket: "fieldwatch") |> range(start: -1d)
//	  |> filter(fn: (r) => r._measurement == "soil_moisture" and r._field == "value")
package influx

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Config locates the database.
type Config struct {
	URL    string // http://host:8086
	Token  string // InfluxDB 1.8: "user:password", or anything when auth is off
	Org    string // ignored by 1.8
	Bucket string // 1.8: "db/autogen"
	// Timeout bounds each request (default 10 s).
	Timeout time.Duration
}

// Store is a store.Store on InfluxDB.
type Store struct {
	client influxdb2.Client
	query  api.QueryAPI
	bucket string
	// Writes (group.go): the v2 write URL, the token, a client keeping a
	// connection for each of the parallel writes.
	writeURL, token string
	timeout         time.Duration
	http            *http.Client
	// records are the commit records waiting to be written (records.go).
	records records
}

var _ store.Store = (*Store)(nil)

// Open connects lazily; Ping checks the server.
func Open(c Config) (*Store, error) {
	if c.URL == "" || c.Bucket == "" {
		return nil, fmt.Errorf("influxdb needs a URL and a bucket")
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	opts := influxdb2.DefaultOptions().SetHTTPRequestTimeout(uint(c.Timeout.Seconds())).SetPrecision(time.Nanosecond)
	client := influxdb2.NewClientWithOptions(c.URL, c.Token, opts)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = parallelWrites + 1
	s := &Store{client: client, query: client.QueryAPI(c.Org), bucket: c.Bucket,
		writeURL: writeEndpoint(strings.TrimSuffix(c.URL, "/"), c.Org, c.Bucket), token: c.Token, timeout: c.Timeout,
		http: &http.Client{Transport: tr}}
	s.records.flush = s.flushRecords
	return s, nil
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.client.Ping(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("influxdb does not answer its ping")
	}
	return nil
}

// Write implements store.Store: the readings as a group without a
// commit record; a reading the database cannot represent is an error.
func (s *Store) Write(ctx context.Context, gateway, site string, rs []telemetry.Reading) error {
	b := &telemetry.Batch{Gateway: gateway, Site: site, Readings: rs}
	g := &store.Group{Batches: []*telemetry.Batch{b}}
	if err := s.WriteGroup(ctx, g); err != nil {
		return err
	}
	if u := g.Left(b); u.Count > 0 {
		return fmt.Errorf("%d readings not stored: %w", u.Count, u.First)
	}
	return nil
}

// quote makes s a Flux string literal. Ids are telemetry Names and units are
// checked, but escape anyway.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`)
	return `"` + r.Replace(s) + `"`
}

func fluxTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Latest implements store.Store.
func (s *Store) Latest(ctx context.Context, gateway string, since time.Time) ([]store.Sample, error) {
	filter := `r._field == "value" or r._field == "quality"`
	if gateway != "" {
		filter = fmt.Sprintf(`r.gateway == %s and (%s)`, quote(gateway), filter)
	}
	q := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s)
  |> filter(fn: (r) => %s)
  |> last()
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`, quote(s.bucket), fluxTime(since), filter)
	return s.samples(ctx, q, store.Sample{})
}

// Series implements store.Store.
func (s *Store) Series(ctx context.Context, q store.SeriesQuery) ([]store.Sample, error) {
	limit := q.Limit
	if limit <= 0 || limit > store.MaxSeriesSamples {
		limit = store.MaxSeriesSamples
	}
	// InfluxDB 1.8's Flux treats range's stop as inclusive; the explicit
	// filter keeps [From, To) on every version.
	sel := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %s and r.gateway == %s and r.device == %s and r._time < %s)`,
		quote(s.bucket), fluxTime(q.From), fluxTime(q.To), quote(q.Metric), quote(q.Gateway), quote(q.Device), fluxTime(q.To))
	base := store.Sample{Gateway: q.Gateway, Device: q.Device, Metric: q.Metric}
	if q.Every <= 0 {
		// Every point has a quality and the finite ones a value too, so the
		// first limit qualities of each series table span the first limit
		// times; limiting each field before the pivot spares pivoting the
		// rest of the range (an export pages through it limit at a time).
		return s.samples(ctx, fmt.Sprintf(`%s
  |> filter(fn: (r) => r._field == "value" or r._field == "quality")
  |> limit(n: %d)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group() |> sort(columns: ["_time"]) |> limit(n: %d)`, sel, limit, limit), base)
	}
	return s.aggregate(ctx, sel, q.Every, limit, base)
}

// aggregate answers an aggregated Series: the mean, min, max and count of
// the values and the worst quality of each window, as five results of one
// query (Flux 0.65 in InfluxDB 1.8 cannot union or join these cheaply),
// merged here by series and window.
func (s *Store) aggregate(ctx context.Context, sel string, every time.Duration, limit int, base store.Sample) ([]store.Sample, error) {
	win := fmt.Sprintf("aggregateWindow(every: %dns, fn: %%s, createEmpty: false, timeSrc: \"_start\") |> limit(n: %d)",
		every.Nanoseconds(), limit)
	flux := fmt.Sprintf(`data = %s
vals = data |> filter(fn: (r) => r._field == "value")
vals |> %s |> yield(name: "mean")
vals |> %s |> yield(name: "min")
vals |> %s |> yield(name: "max")
vals |> %s |> yield(name: "count")
data |> filter(fn: (r) => r._field == "quality")
  |> map(fn: (r) => ({_time: r._time, _start: r._start, _stop: r._stop, site: r.site, unit: r.unit,
      _value: if r._value == "bad" then 2.0 else if r._value == "uncertain" then 1.0 else 0.0}))
  |> %s |> yield(name: "quality")`, sel,
		fmt.Sprintf(win, "mean"), fmt.Sprintf(win, "min"), fmt.Sprintf(win, "max"), fmt.Sprintf(win, "count"), fmt.Sprintf(win, "max"))
	res, err := s.query.Query(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("influxdb query: %w", err)
	}
	defer res.Close()
	type key struct {
		site, unit string
		t          int64
	}
	buckets := map[key]*store.Sample{}
	for res.Next() {
		rec := res.Record()
		// A window's _start is cut at the range's start: put the first
		// bucket back on the epoch grid, as every other one is.
		t := rec.Time().UnixNano()
		t -= ((t % int64(every)) + int64(every)) % int64(every)
		k := key{t: t}
		k.site, _ = rec.ValueByKey("site").(string)
		k.unit, _ = rec.ValueByKey("unit").(string)
		b := buckets[k]
		if b == nil {
			b = new(store.Sample)
			*b = base
			b.Site, b.Unit, b.Time = k.site, k.unit, time.Unix(0, t).UTC()
			buckets[k] = b
		}
		switch v := rec.Value().(type) {
		case float64:
			switch rec.Result() {
			case "mean":
				b.Value = &v
			case "min":
				b.Min = &v
			case "max":
				b.Max = &v
			case "quality":
				b.Quality = telemetry.Quality(v)
			}
		case int64:
			if rec.Result() == "count" {
				b.Count = int(v)
			}
		}
	}
	if res.Err() != nil {
		return nil, fmt.Errorf("influxdb query: %w", res.Err())
	}
	out := make([]store.Sample, 0, len(buckets))
	for _, b := range buckets {
		if b.Count > 0 { // a window of bad readings only has a quality
			out = append(out, *b)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].Site+"\x00"+out[i].Unit < out[j].Site+"\x00"+out[j].Unit
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// samples runs a pivoted query; base fills what the rows do not carry.
func (s *Store) samples(ctx context.Context, flux string, base store.Sample) ([]store.Sample, error) {
	res, err := s.query.Query(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("influxdb query: %w", err)
	}
	defer res.Close()
	var out []store.Sample
	for res.Next() {
		rec := res.Record()
		sm := base
		if v, ok := rec.ValueByKey("gateway").(string); ok {
			sm.Gateway = v
		}
		if v, ok := rec.ValueByKey("site").(string); ok {
			sm.Site = v
		}
		if v, ok := rec.ValueByKey("device").(string); ok {
			sm.Device = v
		}
		if v, ok := rec.ValueByKey("unit").(string); ok {
			sm.Unit = v
		}
		if m := rec.Measurement(); m != "" {
			sm.Metric = m
		}
		sm.Time = rec.Time().UTC()
		if v, ok := rec.ValueByKey("value").(float64); ok {
			sm.Value = &v
		}
		switch q := rec.ValueByKey("quality").(type) {
		case string:
			sm.Quality, _ = telemetry.ParseQuality(q)
		case float64:
			sm.Quality = telemetry.Quality(q)
		}
		out = append(out, sm)
	}
	if res.Err() != nil {
		return nil, fmt.Errorf("influxdb query: %w", res.Err())
	}
	return out, nil
}

// Close implements store.Store: the commit records still held are
// written first (once; a failure is returned).
func (s *Store) Close() error {
	s.records.mu.Lock()
	if s.records.timer != nil {
		s.records.timer.Stop()
		s.records.timer = nil
	}
	s.records.mu.Unlock()
	var err error
	if buf, recs := s.records.take(time.Now()); buf != nil {
		if err = s.post(context.Background(), buf.Bytes()); err != nil {
			err = fmt.Errorf("influxdb write of the commit records held: %w", err)
		}
		s.records.done(recs, err == nil)
		putBuf(buf)
	}
	s.client.Close()
	return err
}
