package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

const eventSchema = `
CREATE TABLE IF NOT EXISTS events (
	gateway TEXT NOT NULL,
	site    TEXT NOT NULL,
	device  TEXT NOT NULL,
	kind    TEXT NOT NULL,
	key     TEXT NOT NULL,
	t       INTEGER NOT NULL, -- Unix nanoseconds
	clock   INTEGER NOT NULL,
	attrs   TEXT NOT NULL,    -- JSON object of strings
	vals    TEXT NOT NULL,    -- JSON object of numbers
	PRIMARY KEY (gateway, device, kind, key, t)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_time ON events (gateway, t);
`

// WriteEvents implements store.Store.
func (s *Store) WriteEvents(ctx context.Context, gateway, site string, es []telemetry.Event) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return writeEvents(ctx, tx, gateway, site, es) })
}

func writeEvents(ctx context.Context, tx *sql.Tx, gateway, site string, es []telemetry.Event) error {
	st, err := tx.PrepareContext(ctx, `INSERT INTO events (gateway, site, device, kind, key, t, clock, attrs, vals)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (gateway, device, kind, key, t) DO UPDATE SET
			site = excluded.site, clock = excluded.clock, attrs = excluded.attrs, vals = excluded.vals`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, e := range es {
		attrs, _ := json.Marshal(nonNil(e.Attrs)) // maps of strings and finite numbers always marshal
		vals, _ := json.Marshal(nonNil(e.Values))
		if _, err := st.ExecContext(ctx, gateway, site, e.Device, e.Kind, e.Key, e.Time.UnixNano(), int(e.Clock),
			string(attrs), string(vals)); err != nil {
			return fmt.Errorf("event %s/%s: %w", e.Device, e.Kind, err)
		}
	}
	return nil
}

func nonNil[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, q store.EventQuery) ([]store.Event, error) {
	limit := q.Limit
	if limit <= 0 || limit > store.MaxEvents {
		limit = store.MaxEvents
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT gateway, site, device, kind, key, t, attrs, vals FROM events
		WHERE (? = '' OR gateway = ?) AND (? = '' OR device = ?) AND (? = '' OR kind = ?) AND (? = '' OR key = ?)
		  AND t >= ? AND t < ?
		ORDER BY t DESC LIMIT ?`,
		q.Gateway, q.Gateway, q.Device, q.Device, q.Kind, q.Kind, q.Key, q.Key, q.From.UnixNano(), q.To.UnixNano(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var e store.Event
		var t int64
		var attrs, vals string
		if err := rows.Scan(&e.Gateway, &e.Site, &e.Device, &e.Kind, &e.Key, &t, &attrs, &vals); err != nil {
			return nil, err
		}
		e.Time = time.Unix(0, t).UTC()
		if err := json.Unmarshal([]byte(attrs), &e.Attrs); err != nil {
			return nil, fmt.Errorf("stored event attributes: %w", err)
		}
		if err := json.Unmarshal([]byte(vals), &e.Values); err != nil {
			return nil, fmt.Errorf("stored event values: %w", err)
		}
		if len(e.Attrs) == 0 {
			e.Attrs = nil
		}
		if len(e.Values) == 0 {
			e.Values = nil
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
