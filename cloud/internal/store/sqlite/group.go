package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
)

// rowsPerInsert is how many points one INSERT statement carries: one
// statement per reading spent most of a write in the driver's per-call
// work (docs/decisions.md); 6 parameters a row stays far below SQLite's
// limit of 32,766.
const rowsPerInsert = 200

// seriesKey names a row of the series table.
type seriesKey struct{ gateway, site, device, metric, unit string }

// WriteGroup implements store.Store in two transactions: the series rows
// (their ids remembered once committed), the points many rows to a
// statement, the events and contexts; then the commit records.
func (s *Store) WriteGroup(ctx context.Context, g *store.Group) error {
	created := map[seriesKey]int64{}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.writePoints(ctx, tx, g, created); err != nil {
			return err
		}
		for _, b := range g.Batches {
			if len(b.Events) > 0 {
				if err := writeEvents(ctx, tx, b.Gateway, b.Site, b.Events); err != nil {
					return err
				}
			}
		}
		for _, def := range g.Contexts {
			body, err := json.Marshal(def)
			if err != nil {
				return err
			}
			// A version never changes: a second definition of it is the
			// same one (the decoder refuses a different one).
			if _, err := tx.ExecContext(ctx, `INSERT INTO contexts (gateway, id, version, body) VALUES (?, ?, ?, ?)
				ON CONFLICT DO NOTHING`, def.Gateway, int64(def.ID), int64(def.Version), string(body)); err != nil {
				return fmt.Errorf("context: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(created) > 0 {
		s.mu.Lock()
		for k, id := range created {
			s.series[k] = id
		}
		s.mu.Unlock()
	}
	// The commit records in a transaction of their own, once the data's is
	// committed and Ready has had its say (store.Group).
	if g.Ready != nil {
		if err := g.Ready(ctx); err != nil {
			return err
		}
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range g.Commits {
			if _, err := tx.ExecContext(ctx, `INSERT INTO commits (gateway, stream, through, above) VALUES (?, ?, ?, ?)
				ON CONFLICT (gateway, stream) DO UPDATE SET through = excluded.through, above = excluded.above`,
				c.Gateway, c.Stream, int64(c.Commit.Through), c.Commit.String()); err != nil {
				return fmt.Errorf("commit record: %w", err)
			}
		}
		return nil
	})
}

// writePoints upserts the group's readings; created gathers the ids of
// series rows this transaction made or first looked up.
func (s *Store) writePoints(ctx context.Context, tx *sql.Tx, g *store.Group, created map[seriesKey]int64) error {
	upSeries, err := tx.PrepareContext(ctx, `INSERT INTO series (gateway, site, device, metric, unit) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT DO UPDATE SET unit = excluded.unit RETURNING id`)
	if err != nil {
		return err
	}
	defer upSeries.Close()
	id := func(k seriesKey) (int64, error) {
		if id, ok := created[k]; ok {
			return id, nil
		}
		s.mu.Lock()
		id, ok := s.series[k]
		s.mu.Unlock()
		if ok {
			return id, nil
		}
		if err := upSeries.QueryRowContext(ctx, k.gateway, k.site, k.device, k.metric, k.unit).Scan(&id); err != nil {
			return 0, fmt.Errorf("series %s/%s: %w", k.device, k.metric, err)
		}
		created[k] = id
		return id, nil
	}
	var full *sql.Stmt // the statement of rowsPerInsert rows, prepared once
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	args := make([]any, 0, 6*rowsPerInsert)
	rows := 0
	exec := func() error {
		if rows == 0 {
			return nil
		}
		var err error
		if rows == rowsPerInsert {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, insertPoints(rowsPerInsert)); err != nil {
					return err
				}
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertPoints(rows), args...)
		}
		args, rows = args[:0], 0
		return err
	}
	for _, b := range g.Batches {
		for i := range b.Readings {
			r := &b.Readings[i]
			if !store.Representable(r.Time) {
				g.Unwritable(b, fmt.Errorf("reading %s/%s: time %s is outside what the store keeps (years 1678 to 2262)",
					r.Device, r.Metric, r.Time.Format(time.RFC3339)))
				continue
			}
			sid, err := id(seriesKey{b.Gateway, b.Site, r.Device, r.Metric, r.Unit})
			if err != nil {
				return err
			}
			var v sql.NullFloat64
			if !math.IsNaN(r.Value) && !math.IsInf(r.Value, 0) {
				v = sql.NullFloat64{Float64: r.Value, Valid: true}
			}
			var delay sql.NullInt64
			if !g.Stored.IsZero() {
				delay = sql.NullInt64{Int64: int64(g.Stored.Sub(r.Time)), Valid: true}
			}
			args = append(args, sid, r.Time.UnixNano(), v, int(r.Quality), int(r.Clock), delay)
			if rows++; rows == rowsPerInsert {
				if err := exec(); err != nil {
					return err
				}
			}
		}
	}
	return exec()
}

// insertPoints is an upsert of n points. Within one statement a later row
// of the same series and time replaces an earlier one, as separate
// statements did.
func insertPoints(n int) string {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO points (series, t, value, quality, clock, delay) VALUES `)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?,?)")
	}
	sb.WriteString(` ON CONFLICT (series, t) DO UPDATE SET value = excluded.value, quality = excluded.quality,
		clock = excluded.clock, delay = excluded.delay`)
	return sb.String()
}
