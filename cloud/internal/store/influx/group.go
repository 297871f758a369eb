package influx

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Group writes go straight to the v2 write endpoint (/api/v2/write, which
// InfluxDB 1.8 serves too) as line protocol made by lineprotocol.Encoder:
// no point objects, a pooled buffer per request. The client library's
// point API made and sorted a map per point and was the largest cost of
// the cloud's ingest (docs/decisions.md).

// Write sizes. A request of 5,000 lines is where InfluxDB 1.8 reaches its
// ceiling on the benchmark machine (docs/benchmarks.md); four at once keep
// both of its cores busy.
const (
	linesPerRequest = 5000
	parallelWrites  = 4
)

// WriteGroup implements store.Store: the readings and events of every
// batch, and the contexts the batches defined, in requests of up to
// linesPerRequest lines, several at once; then, only once all of them are
// written (and Ready has had its say: the cloud acknowledges the batches
// then, confirming the contexts to their gateways), the commit records in
// one request, so a commit never claims data the database does not hold.
func (s *Store) WriteGroup(ctx context.Context, g *store.Group) error {
	chunks := s.encodeData(g)
	defs, err := contextLines(g)
	if err != nil {
		return err
	}
	if defs.Len() > 0 {
		chunks = append(chunks, defs)
	} else {
		putBuf(defs)
	}
	err = s.postAll(ctx, chunks)
	for _, c := range chunks { // not kept while Ready waits
		putBuf(c)
	}
	if err != nil {
		return err
	}
	if g.Ready != nil {
		if err := g.Ready(ctx); err != nil {
			return err
		}
	}
	meta := commitLines(g)
	defer putBuf(meta)
	if err := s.post(ctx, meta.Bytes()); err != nil {
		return fmt.Errorf("influxdb write of the commit records: %w", err)
	}
	return nil
}

// encodeData makes the group's readings into requests of linesPerRequest
// lines, and its events (few) into one more.
func (s *Store) encodeData(g *store.Group) []*bytes.Buffer {
	var chunks []*bytes.Buffer
	enc := encoders.Get().(*lineprotocol.Encoder)
	defer encoders.Put(enc)
	enc.Reset()
	lines := 0
	flush := func() {
		if lines > 0 {
			buf := getBuf()
			buf.Write(enc.Bytes())
			chunks = append(chunks, buf)
			enc.Reset()
			lines = 0
		}
	}
	var events *bytes.Buffer
	for _, b := range g.Batches {
		for i := range b.Readings {
			appendReading(enc, b.Gateway, b.Site, &b.Readings[i], g.Stored)
			if err := enc.Err(); err != nil {
				// The encoder dropped the line; the batch's other readings
				// are written, and the caller counts and logs this one.
				g.Unwritable(b, fmt.Errorf("reading %s/%s at %s: %w", b.Readings[i].Device, b.Readings[i].Metric,
					b.Readings[i].Time.Format(time.RFC3339Nano), err))
				enc.ClearErr()
				continue
			}
			if lines++; lines == linesPerRequest {
				flush()
			}
		}
		for _, p := range eventPoints(b.Gateway, b.Site, b.Events) {
			if events == nil {
				events = getBuf()
			}
			events.WriteString(write.PointToLineProtocol(p, time.Nanosecond))
		}
	}
	flush()
	if events != nil {
		chunks = append(chunks, events)
	}
	return chunks
}

// appendReading encodes one reading in the layout the package comment
// gives: tags in lexical order, as the encoder requires.
func appendReading(enc *lineprotocol.Encoder, gateway, site string, r *telemetry.Reading, stored time.Time) {
	enc.StartLine(r.Metric)
	enc.AddTag("device", r.Device)
	enc.AddTag("gateway", gateway)
	if site != "" {
		enc.AddTag("site", site)
	}
	if r.Unit != "" {
		enc.AddTag("unit", r.Unit)
	}
	if v, ok := lineprotocol.FloatValue(r.Value); ok { // false for NaN and ±Inf: no value field
		enc.AddField("value", v)
	}
	quality, _ := lineprotocol.StringValue(r.Quality.String()) // fixed ASCII names: always valid
	clock, _ := lineprotocol.StringValue(r.Clock.String())
	enc.AddField("quality", quality)
	enc.AddField("clock", clock)
	if !stored.IsZero() {
		d, _ := lineprotocol.FloatValue(stored.Sub(r.Time).Seconds())
		enc.AddField("delay", d)
	}
	enc.EndLine(r.Time)
}

// contextLines are the compact contexts the group's batches defined,
// stamped now. They are written with the data, before the batches are
// acknowledged: an ack confirms a context to its gateway, whose next batch
// refers to it (docs/decisions.md §40).
func contextLines(g *store.Group) (*bytes.Buffer, error) {
	now := time.Now()
	buf := getBuf()
	for _, def := range g.Contexts {
		body, err := json.Marshal(def)
		if err != nil {
			putBuf(buf)
			return nil, err
		}
		p := write.NewPointWithMeasurement(contextMeasurement).AddTag("gateway", def.Gateway).
			AddTag("id", fmt.Sprintf("%08x", def.ID)).AddTag("version", strconv.FormatUint(uint64(def.Version), 10)).
			AddField("body", string(body)).SetTime(now)
		buf.WriteString(write.PointToLineProtocol(p, time.Nanosecond))
	}
	return buf, nil
}

// commitLines are the group's commit records, stamped now: the newest
// point of each wins when they are read (commits.go).
func commitLines(g *store.Group) *bytes.Buffer {
	now := time.Now()
	buf := getBuf()
	for _, c := range g.Commits {
		buf.WriteString(write.PointToLineProtocol(commitPoint(c.Gateway, c.Stream, c.Commit, now), time.Nanosecond))
	}
	return buf
}

// commitPoint is a stream's commit record.
func commitPoint(gateway, stream string, c store.Commit, now time.Time) *write.Point {
	p := write.NewPointWithMeasurement(commitMeasurement).AddTag("gateway", gateway).AddTag("stream", stream).
		AddField("through", int64(c.Through)).SetTime(now)
	if len(c.Above) > 0 { // InfluxDB keeps no empty strings: no field means no ranges
		p.AddField("above", c.String())
	}
	return p
}

// postAll writes the chunks, parallelWrites at a time; the first error
// wins, and the rest are still waited for.
func (s *Store) postAll(ctx context.Context, chunks []*bytes.Buffer) error {
	if len(chunks) == 1 {
		return s.post(ctx, chunks[0].Bytes())
	}
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	sem := make(chan struct{}, parallelWrites)
	for _, c := range chunks {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := s.post(ctx, c.Bytes()); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

// post sends line protocol to the write endpoint.
func (s *Store) post(ctx context.Context, body []byte) error {
	if len(body) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.writeURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("influxdb write: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if s.token != "" {
		req.Header.Set("Authorization", "Token "+s.token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("influxdb write: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		var e struct{ Message, Error string } // 2.x says "message", 1.8 "error"
		if json.Unmarshal(msg, &e) == nil && (e.Message != "" || e.Error != "") {
			msg = []byte(e.Message + e.Error)
		}
		return fmt.Errorf("influxdb write: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// writeEndpoint is the v2 write URL of a server, org and bucket.
func writeEndpoint(server, org, bucket string) string {
	q := url.Values{"bucket": {bucket}, "precision": {"ns"}}
	if org != "" {
		q.Set("org", org)
	}
	return server + "/api/v2/write?" + q.Encode()
}

var (
	encoders = sync.Pool{New: func() any {
		e := new(lineprotocol.Encoder)
		e.SetPrecision(lineprotocol.Nanosecond)
		return e
	}}
	bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

func getBuf() *bytes.Buffer { b := bufs.Get().(*bytes.Buffer); b.Reset(); return b }

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 4<<20 { // one request's worth; a huge one is left to the collector
		bufs.Put(b)
	}
}
