// Package sqlite is the embedded Store: one SQLite file, through the pure-Go
// modernc.org/sqlite driver, so the cloud runs with no database server.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Store is a store.Store in a SQLite file.
type Store struct {
	db *sql.DB
	// series remembers the ids of series rows (they never change once
	// made), so a group looks up only the series it is the first to see.
	mu     sync.Mutex
	series map[seriesKey]int64
}

var _ store.Store = (*Store)(nil)

const schema = `
CREATE TABLE IF NOT EXISTS series (
	id      INTEGER PRIMARY KEY,
	gateway TEXT NOT NULL,
	site    TEXT NOT NULL,
	device  TEXT NOT NULL,
	metric  TEXT NOT NULL,
	unit    TEXT NOT NULL,
	UNIQUE (gateway, site, device, metric, unit)
);
CREATE TABLE IF NOT EXISTS points (
	series  INTEGER NOT NULL REFERENCES series(id),
	t       INTEGER NOT NULL, -- Unix nanoseconds
	value   REAL,             -- NULL when not finite
	quality INTEGER NOT NULL,
	clock   INTEGER NOT NULL,
	delay   INTEGER,          -- ns from acquisition to storage; NULL when not known (stats.go)
	PRIMARY KEY (series, t)
) WITHOUT ROWID;
`

// Open opens (creating if needed) the database at path.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("cannot create data directory: %w", err)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serialises anyway
	if _, err := db.Exec(schema + eventSchema + commitSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot create schema in %s: %w", path, err)
	}
	if err := addDelayColumn(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot upgrade the schema in %s: %w", path, err)
	}
	return &Store{db: db, series: map[seriesKey]int64{}}, nil
}

// Write implements store.Store, in one transaction.
func (s *Store) Write(ctx context.Context, gateway, site string, rs []telemetry.Reading) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return writeReadings(ctx, tx, gateway, site, rs, time.Time{}) })
}

// inTx runs f in a transaction and commits it if f succeeds.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// writeReadings writes rs; with stored set, each keeps its delay (stored
// minus its time), else its delay is not known.
func writeReadings(ctx context.Context, tx *sql.Tx, gateway, site string, rs []telemetry.Reading, stored time.Time) error {
	upSeries, err := tx.PrepareContext(ctx, `INSERT INTO series (gateway, site, device, metric, unit) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT DO UPDATE SET unit = excluded.unit RETURNING id`)
	if err != nil {
		return err
	}
	defer upSeries.Close()
	upPoint, err := tx.PrepareContext(ctx, `INSERT INTO points (series, t, value, quality, clock, delay) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (series, t) DO UPDATE SET value = excluded.value, quality = excluded.quality, clock = excluded.clock,
			delay = excluded.delay`)
	if err != nil {
		return err
	}
	defer upPoint.Close()
	ids := map[telemetry.SeriesKey]int64{}
	for _, r := range rs {
		id, ok := ids[r.Key()]
		if !ok {
			if err := upSeries.QueryRowContext(ctx, gateway, site, r.Device, r.Metric, r.Unit).Scan(&id); err != nil {
				return fmt.Errorf("series %s/%s: %w", r.Device, r.Metric, err)
			}
			ids[r.Key()] = id
		}
		var v sql.NullFloat64
		if !math.IsNaN(r.Value) && !math.IsInf(r.Value, 0) {
			v = sql.NullFloat64{Float64: r.Value, Valid: true}
		}
		var delay sql.NullInt64
		if !stored.IsZero() {
			delay = sql.NullInt64{Int64: int64(stored.Sub(r.Time)), Valid: true}
		}
		if _, err := upPoint.ExecContext(ctx, id, r.Time.UnixNano(), v, int(r.Quality), int(r.Clock), delay); err != nil {
			return err
		}
	}
	return nil
}

// Latest implements store.Store.
func (s *Store) Latest(ctx context.Context, gateway string, since time.Time) ([]store.Sample, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT s.gateway, s.site, s.device, s.metric, s.unit, p.t, p.value, p.quality
		FROM series s JOIN points p ON p.series = s.id
		WHERE (? = '' OR s.gateway = ?)
		  AND p.t = (SELECT max(t) FROM points WHERE series = s.id)
		  AND p.t >= ?
		ORDER BY s.gateway, s.device, s.metric`, gateway, gateway, since.UnixNano())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Sample
	for rows.Next() {
		var sm store.Sample
		var t int64
		var v sql.NullFloat64
		var q int
		if err := rows.Scan(&sm.Gateway, &sm.Site, &sm.Device, &sm.Metric, &sm.Unit, &t, &v, &q); err != nil {
			return nil, err
		}
		sm.Time = time.Unix(0, t).UTC()
		if v.Valid {
			sm.Value = &v.Float64
		}
		sm.Quality = telemetry.Quality(q)
		out = append(out, sm)
	}
	return out, rows.Err()
}

// Series implements store.Store. It finds the series rows first (one, but
// a device whose site or unit changed has several), so that reading one
// series walks the points' primary key in time order with no sort: an
// export pages through a million samples in Limit-sized steps at the cost
// of each step only.
func (s *Store) Series(ctx context.Context, q store.SeriesQuery) ([]store.Sample, error) {
	limit := q.Limit
	if limit <= 0 || limit > store.MaxSeriesSamples {
		limit = store.MaxSeriesSamples
	}
	type seriesRow struct{ site, unit string }
	ids := map[int64]seriesRow{}
	var idList []any
	rows, err := s.db.QueryContext(ctx, `SELECT id, site, unit FROM series WHERE gateway = ? AND device = ? AND metric = ? ORDER BY id`,
		q.Gateway, q.Device, q.Metric)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id int64
		var r seriesRow
		if err := rows.Scan(&id, &r.site, &r.unit); err != nil {
			rows.Close()
			return nil, err
		}
		ids[id] = r
		idList = append(idList, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(idList) == 0 {
		return nil, nil
	}
	in := "series = ?"
	if len(idList) > 1 {
		in = "series IN (?" + strings.Repeat(", ?", len(idList)-1) + ")"
	}
	args := append([]any{}, idList...)
	args = append(args, q.From.UnixNano(), q.To.UnixNano(), limit)
	if q.Every > 0 && bucketCount(q) <= perBucketMax {
		return s.bucketByBucket(ctx, q, in, idList, limit, func(id int64, sm *store.Sample) {
			sm.Site, sm.Unit = ids[id].site, ids[id].unit
		})
	}
	if q.Every > 0 {
		step := int64(q.Every)
		// Floor division, so that buckets before 1970 align too.
		bucket := fmt.Sprintf("(t - ((t %% %[1]d) + %[1]d) %% %[1]d)", step)
		rows, err = s.db.QueryContext(ctx, `
			SELECT series, `+bucket+` AS b, avg(value), min(value), max(value), count(value), max(quality)
			FROM points WHERE `+in+` AND t >= ? AND t < ?
			GROUP BY series, b HAVING count(value) > 0 ORDER BY b, series LIMIT ?`, args...)
	} else {
		rows, err = s.db.QueryContext(ctx, `
			SELECT series, t, value, NULL, NULL, 0, quality
			FROM points WHERE `+in+` AND t >= ? AND t < ?
			ORDER BY t, series LIMIT ?`, args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Sample
	for rows.Next() {
		sm := store.Sample{Gateway: q.Gateway, Device: q.Device, Metric: q.Metric}
		var id, t int64
		var v, lo, hi sql.NullFloat64
		var qual int
		if err := rows.Scan(&id, &t, &v, &lo, &hi, &sm.Count, &qual); err != nil {
			return nil, err
		}
		sm.Site, sm.Unit = ids[id].site, ids[id].unit
		sm.Time = time.Unix(0, t).UTC()
		if v.Valid {
			sm.Value = &v.Float64
		}
		if lo.Valid {
			sm.Min = &lo.Float64
		}
		if hi.Valid {
			sm.Max = &hi.Float64
		}
		sm.Quality = telemetry.Quality(qual)
		out = append(out, sm)
	}
	return out, rows.Err()
}

// perBucketMax is the most buckets an aggregated Series reads one query
// each. SQLite cannot know that the bucket grows with t, so GROUP BY bucket
// sorts every point of the range (a year of one-minute data: about 320 ms
// on the benchmark machine); one aggregate query per bucket walks the
// primary key and sorts nothing (130 ms), but costs some 15 µs for a bucket
// with nothing in it, which a sparse series' many buckets would add up.
const perBucketMax = 2000

// bucketCount is how many buckets of q.Every on the epoch grid [q.From, q.To)
// touches.
func bucketCount(q store.SeriesQuery) int64 {
	e := int64(q.Every)
	return (floorTo(q.To.UnixNano()-1, e)-floorTo(q.From.UnixNano(), e))/e + 1
}

// floorTo rounds t down to a multiple of e.
func floorTo(t, e int64) int64 { return t - ((t%e)+e)%e }

// bucketByBucket answers an aggregated Series with one query per bucket.
func (s *Store) bucketByBucket(ctx context.Context, q store.SeriesQuery, in string, idList []any, limit int,
	fill func(id int64, sm *store.Sample)) ([]store.Sample, error) {
	stmt, err := s.db.PrepareContext(ctx, `
		SELECT series, avg(value), min(value), max(value), count(value), max(quality)
		FROM points WHERE `+in+` AND t >= ? AND t < ? GROUP BY series ORDER BY series`)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	step := int64(q.Every)
	from, to := q.From.UnixNano(), q.To.UnixNano()
	var out []store.Sample
	for b := floorTo(from, step); b < to && len(out) < limit; b += step {
		args := append(append([]any{}, idList...), max(b, from), min(b+step, to))
		rows, err := stmt.QueryContext(ctx, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() && len(out) < limit {
			sm := store.Sample{Gateway: q.Gateway, Device: q.Device, Metric: q.Metric, Time: time.Unix(0, b).UTC()}
			var id int64
			var v, lo, hi sql.NullFloat64
			var qual int
			if err := rows.Scan(&id, &v, &lo, &hi, &sm.Count, &qual); err != nil {
				rows.Close()
				return nil, err
			}
			if sm.Count == 0 {
				continue
			}
			fill(id, &sm)
			sm.Value, sm.Min, sm.Max = &v.Float64, &lo.Float64, &hi.Float64
			sm.Quality = telemetry.Quality(qual)
			out = append(out, sm)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	if s.db == nil {
		return errors.New("closed twice")
	}
	err := s.db.Close()
	s.db = nil
	return err
}
