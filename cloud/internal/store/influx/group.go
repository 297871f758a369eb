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

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
)

// Group writes go straight to the v2 write endpoint (/api/v2/write, which
// InfluxDB 1.8 serves too) as line protocol written directly (lines.go):
// no point objects, a pooled buffer per request. The client library's
// point API made and sorted a map per point and was the largest cost of
// the cloud's ingest, then lineprotocol.Encoder's checks of every name of
// every line (docs/decisions.md §36).

// Write sizes. A request of 5,000 lines is where InfluxDB 1.8 reaches its
// ceiling on the benchmark machine (docs/benchmarks.md); four at once keep
// both of its cores busy.
const (
	linesPerRequest = 5000
	parallelWrites  = 4
)

// WriteGroup implements store.Store: the readings and events of every
// batch, and the contexts the batches defined, in requests of up to
// linesPerRequest lines, several at once, the first also carrying the
// commit records earlier groups left (records.go); then, once all of them
// are written and Ready has had its say (the cloud acknowledges the
// batches then, confirming the contexts to their gateways), the group's own
// commit records are left for the next request, so a commit never claims
// data the database does not hold.
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
	var held map[recordKey]heldRecord
	if len(chunks) > 0 {
		var recs *bytes.Buffer
		if recs, held = s.records.take(time.Now()); recs != nil {
			chunks[0].Write(recs.Bytes())
			putBuf(recs)
		}
	}
	err = s.postAll(ctx, chunks)
	s.records.done(held, err == nil)
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
	s.records.add(g.Commits)
	return nil
}

// encodeData makes the group's readings into requests of linesPerRequest
// lines, and its events (few) into one more.
func (s *Store) encodeData(g *store.Group) []*bytes.Buffer {
	var chunks []*bytes.Buffer
	w := lineWriters.Get().(*lineWriter)
	defer lineWriters.Put(w)
	w.Reset()
	lines := 0
	flush := func() {
		if lines > 0 {
			buf := getBuf()
			buf.Write(w.Bytes())
			chunks = append(chunks, buf)
			w.Reset()
			lines = 0
		}
	}
	var events *bytes.Buffer
	for _, b := range g.Batches {
		for i := range b.Readings {
			r := &b.Readings[i]
			if err := w.appendReading(b.Gateway, b.Site, r, g.Stored); err != nil {
				// The line is not written; the batch's other readings
				// are, and the caller counts and logs this one.
				g.Unwritable(b, fmt.Errorf("reading %s/%s at %s: %w", r.Device, r.Metric,
					r.Time.Format(time.RFC3339Nano), err))
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

// commitLine is a stream's commit record, stamped now: the newest point of
// each stream wins when they are read (commits.go).
func commitLine(gateway, stream string, c store.Commit, now time.Time) string {
	p := write.NewPointWithMeasurement(commitMeasurement).AddTag("gateway", gateway).AddTag("stream", stream).
		AddField("through", int64(c.Through)).SetTime(now)
	if len(c.Above) > 0 { // InfluxDB keeps no empty strings: no field means no ranges
		p.AddField("above", c.String())
	}
	return write.PointToLineProtocol(p, time.Nanosecond)
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
	lineWriters = sync.Pool{New: func() any { return newLineWriter() }}
	bufs        = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

func getBuf() *bytes.Buffer { b := bufs.Get().(*bytes.Buffer); b.Reset(); return b }

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 4<<20 { // one request's worth; a huge one is left to the collector
		bufs.Put(b)
	}
}
