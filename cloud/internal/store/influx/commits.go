package influx

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// The cloud's own records live beside the data, so that every ingestor
// replica sees them:
//
//	fieldwatch_commit   tags gateway, stream; fields through (integer), above ("a-b,c-d")
//	fieldwatch_context  tags gateway, id (8 hex digits), version; field body (the context as JSON)
//
// Each is written at the time of writing; the newest point wins. Neither has
// a "value" field, so the readings queries never see them.
const (
	commitMeasurement  = "fieldwatch_commit"
	contextMeasurement = "fieldwatch_context"
)

// WriteBatch implements store.Store as a group of one batch; a reading
// the store cannot represent is an error.
func (s *Store) WriteBatch(ctx context.Context, b *telemetry.Batch, def *telemetry.CompactContext, c store.Commit, stored time.Time) error {
	g := store.BatchGroup(b, def, c, stored)
	if err := s.WriteGroup(ctx, g); err != nil {
		return err
	}
	if u := g.Left(b); u.Count > 0 {
		return fmt.Errorf("%d readings not stored: %w", u.Count, u.First)
	}
	return nil
}

// Committed implements store.Store: a record held for writing
// (records.go) is newer than any stored.
func (s *Store) Committed(ctx context.Context, gateway, stream string) (store.Commit, error) {
	if c, ok := s.records.held(gateway, stream); ok {
		return c, nil
	}
	q := fmt.Sprintf(`from(bucket: %s) |> range(start: 1970-01-01T00:00:00Z)
  |> filter(fn: (r) => r._measurement == %s and r.gateway == %s and r.stream == %s)
  |> last()`, quote(s.bucket), quote(commitMeasurement), quote(gateway), quote(stream))
	res, err := s.query.Query(ctx, q)
	if err != nil {
		return store.Commit{}, fmt.Errorf("influxdb query: %w", err)
	}
	defer res.Close()
	var through int64
	var above string
	var throughAt, aboveAt time.Time
	for res.Next() {
		r := res.Record()
		switch v := r.Value().(type) {
		case int64:
			through, throughAt = v, r.Time()
		case string:
			above, aboveAt = v, r.Time()
		}
	}
	if res.Err() != nil {
		return store.Commit{}, fmt.Errorf("influxdb query: %w", res.Err())
	}
	if throughAt.IsZero() {
		return store.Commit{}, nil
	}
	if through < 0 {
		return store.Commit{}, fmt.Errorf("commit record of %s/%s is damaged", gateway, stream)
	}
	if !aboveAt.Equal(throughAt) {
		above = "" // the newest record had no ranges; these are an older one's
	}
	return store.ParseCommit(uint64(through), above)
}

// CompactContext implements store.Store.
func (s *Store) CompactContext(ctx context.Context, gateway string, id, version uint32) (*telemetry.CompactContext, error) {
	q := fmt.Sprintf(`from(bucket: %s) |> range(start: 1970-01-01T00:00:00Z)
  |> filter(fn: (r) => r._measurement == %s and r.gateway == %s and r.id == %s and r.version == %s and r._field == "body")
  |> last()`, quote(s.bucket), quote(contextMeasurement), quote(gateway), quote(fmt.Sprintf("%08x", id)),
		quote(strconv.FormatUint(uint64(version), 10)))
	res, err := s.query.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("influxdb query: %w", err)
	}
	defer res.Close()
	var body string
	for res.Next() {
		body, _ = res.Record().Value().(string)
	}
	if res.Err() != nil {
		return nil, fmt.Errorf("influxdb query: %w", res.Err())
	}
	if body == "" {
		return nil, store.UnknownContext(gateway, id, version)
	}
	return store.ParseContext(gateway, id, version, []byte(body))
}
