package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
)

// addDelayColumn gives a database made before the statistics the points'
// delay column; its old readings keep no delay (NULL).
func addDelayColumn(db *sql.DB) error {
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info('points') WHERE name = 'delay'`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err := db.Exec(`ALTER TABLE points ADD COLUMN delay INTEGER`)
	return err
}

// Stats implements store.Store: the series rows first, each one's first
// reading from the primary key, then one aggregate query per period over
// all of them (each walks the (series, t) key of the period, no sort).
// Series rows that differ only in site are merged.
func (s *Store) Stats(ctx context.Context, q store.StatsQuery) ([]store.SeriesStats, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	end := q.Bounds[len(q.Bounds)-1].UnixNano()
	rows, err := s.db.QueryContext(ctx, `
		SELECT s.id, s.device, s.metric, s.unit, (SELECT min(t) FROM points WHERE series = s.id) AS first
		FROM series s WHERE s.gateway = ? AND (? = '' OR s.device = ?) AND (? = '' OR s.metric = ?)
		ORDER BY s.device, s.metric, s.unit, s.id`, q.Gateway, q.Device, q.Device, q.Metric, q.Metric)
	if err != nil {
		return nil, err
	}
	var out []store.SeriesStats
	index := map[int64]int{} // series row → out
	var ids []any
	for rows.Next() {
		var id int64
		var dev, met, unit string
		var first sql.NullInt64
		if err := rows.Scan(&id, &dev, &met, &unit, &first); err != nil {
			rows.Close()
			return nil, err
		}
		if !first.Valid || first.Int64 >= end {
			continue
		}
		n := len(out)
		if n == 0 || out[n-1].Device != dev || out[n-1].Metric != met || out[n-1].Unit != unit {
			out = append(out, store.SeriesStats{Device: dev, Metric: met, Unit: unit, First: time.Unix(0, first.Int64).UTC(),
				Periods: make([]store.PeriodStats, len(q.Bounds)-1)})
			n++
		} else if t := time.Unix(0, first.Int64).UTC(); t.Before(out[n-1].First) {
			out[n-1].First = t
		}
		index[id] = n - 1
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	stmt, err := s.db.PrepareContext(ctx, `
		SELECT series, count(*), sum(quality = 0),
			count(CASE WHEN quality = 0 THEN value END), min(CASE WHEN quality = 0 THEN value END),
			avg(CASE WHEN quality = 0 THEN value END), max(CASE WHEN quality = 0 THEN value END),
			count(delay), avg(delay), max(delay)
		FROM points WHERE series IN (?`+strings.Repeat(", ?", len(ids)-1)+`) AND t >= ? AND t < ?
		GROUP BY series`)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	for i := 0; i+1 < len(q.Bounds); i++ {
		args := append(append([]any{}, ids...), q.Bounds[i].UnixNano(), q.Bounds[i+1].UnixNano())
		if err := s.period(ctx, stmt, args, func(id int64, p store.PeriodStats) {
			out[index[id]].Periods[i].Merge(p)
		}); err != nil {
			return nil, fmt.Errorf("stats of %s: %w", q.Bounds[i].Format(time.RFC3339), err)
		}
	}
	return out, nil
}

func (s *Store) period(ctx context.Context, stmt *sql.Stmt, args []any, add func(int64, store.PeriodStats)) error {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var p store.PeriodStats
		var lo, mean, hi, dmean sql.NullFloat64
		var dmax sql.NullInt64
		if err := rows.Scan(&id, &p.Received, &p.Good, &p.Values, &lo, &mean, &hi, &p.Delays, &dmean, &dmax); err != nil {
			return err
		}
		if p.Values > 0 {
			p.Min, p.Mean, p.Max = &lo.Float64, &mean.Float64, &hi.Float64
		}
		if p.Delays > 0 {
			m, x := dmean.Float64/1e9, float64(dmax.Int64)/1e9
			p.DelayMean, p.DelayMax = &m, &x
		}
		add(id, p)
	}
	return rows.Err()
}
