package influx

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Readings as line protocol, written directly. lineprotocol.Encoder checks
// and escapes every measurement, tag and field name of every line; a
// gateway's readings repeat a few series, so the checks and escaping were
// most of the cloud's ingest CPU (docs/benchmarks.md, issue 15). Here each
// series' key — measurement and tags, made by the Encoder, so checked and
// escaped by it — is made once and kept; a reading appends its key, its
// fields from numbers and fixed names, and its time. The output is the
// Encoder's byte for byte (FuzzReadingLine compares the two).

// maxSeriesKeys bounds a lineWriter's keys: past it they are forgotten and
// made again (a province has some tens of thousands of series).
const maxSeriesKeys = 100_000

// seriesID names a series: a reading's measurement and tags.
type seriesID struct{ metric, device, gateway, site, unit string }

// lineWriter appends readings' lines to buf. Not safe for concurrent use:
// one per request being encoded (pooled).
type lineWriter struct {
	buf  []byte
	keys map[seriesID]string // a series' measurement and tags, escaped, as the Encoder writes them
	enc  lineprotocol.Encoder
}

func newLineWriter() *lineWriter {
	w := &lineWriter{keys: map[seriesID]string{}}
	w.enc.SetPrecision(lineprotocol.Nanosecond)
	return w
}

// Reset empties the buffer; the keys are kept.
func (w *lineWriter) Reset() { w.buf = w.buf[:0] }

// Bytes is the lines written since Reset.
func (w *lineWriter) Bytes() []byte { return w.buf }

// The time range line protocol holds at nanosecond precision (as the
// Encoder checks it).
var (
	minLineTime = time.Unix(0, math.MinInt64)
	maxLineTime = time.Unix(0, math.MaxInt64)
)

// appendReading appends one reading's line in the layout the package
// comment gives, or returns why it cannot be written (nothing appended).
func (w *lineWriter) appendReading(gateway, site string, r *telemetry.Reading, stored time.Time) error {
	key, err := w.key(seriesID{metric: r.Metric, device: r.Device, gateway: gateway, site: site, unit: r.Unit})
	if err != nil {
		return err
	}
	if !r.Time.IsZero() && (r.Time.Before(minLineTime) || r.Time.After(maxLineTime)) {
		return fmt.Errorf("timestamp %s: %w", r.Time.Format(time.RFC3339), lineprotocol.ErrValueOutOfRange)
	}
	b := append(w.buf, key...)
	b = append(b, ' ')
	if !math.IsNaN(r.Value) && !math.IsInf(r.Value, 0) { // no value field for NaN and ±Inf
		b = append(b, "value="...)
		b = strconv.AppendFloat(b, r.Value, 'g', -1, 64)
		b = append(b, ',')
	}
	b = append(b, `quality="`...)
	b = append(b, r.Quality.String()...) // fixed ASCII names: nothing to escape
	b = append(b, `",clock="`...)
	b = append(b, r.Clock.String()...)
	b = append(b, '"')
	if !stored.IsZero() {
		b = append(b, ",delay="...)
		b = strconv.AppendFloat(b, stored.Sub(r.Time).Seconds(), 'g', -1, 64)
	}
	if !r.Time.IsZero() {
		b = append(b, ' ')
		b = strconv.AppendInt(b, r.Time.UnixNano(), 10)
	}
	w.buf = append(b, '\n')
	return nil
}

// key is the series' measurement and tags (tags in lexical order, as the
// Encoder requires), made by the Encoder the first time.
func (w *lineWriter) key(id seriesID) (string, error) {
	if k, ok := w.keys[id]; ok {
		return k, nil
	}
	e := &w.enc
	e.Reset()
	e.StartLine(id.metric)
	e.AddTag("device", id.device)
	e.AddTag("gateway", id.gateway)
	if id.site != "" {
		e.AddTag("site", id.site)
	}
	if id.unit != "" {
		e.AddTag("unit", id.unit)
	}
	if err := e.Err(); err != nil {
		e.Reset()
		return "", err
	}
	k := string(e.Bytes())
	e.Reset()
	if len(w.keys) >= maxSeriesKeys {
		clear(w.keys)
	}
	w.keys[id] = k
	return k, nil
}
