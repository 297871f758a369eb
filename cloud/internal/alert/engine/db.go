package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
	"github.com/fieldwatch/fieldwatch/cloud/internal/sqlitefile"
)

// db is the engine's SQLite file: series state, history and silences.
type db struct {
	sql       *sql.DB
	lastCheck time.Time
}

const schema = `
CREATE TABLE IF NOT EXISTS series (
	key  TEXT PRIMARY KEY, -- rule, gateway, device, metric joined by \x1f
	data BLOB NOT NULL     -- JSON of the series state
);
CREATE TABLE IF NOT EXISTS history (
	id          INTEGER PRIMARY KEY,
	fingerprint TEXT NOT NULL,
	rule        TEXT NOT NULL,
	gateway     TEXT NOT NULL,
	site        TEXT NOT NULL,
	device      TEXT NOT NULL,
	t           INTEGER NOT NULL, -- event time, Unix nanoseconds
	data        BLOB NOT NULL     -- JSON of the transition
);
CREATE INDEX IF NOT EXISTS history_gateway ON history (gateway, t);
CREATE INDEX IF NOT EXISTS history_fingerprint ON history (fingerprint, t);
CREATE TABLE IF NOT EXISTS silences (
	id   TEXT PRIMARY KEY,
	data BLOB NOT NULL
);
`

func openDB(path string) (*db, error) {
	s, err := sqlitefile.Open(path, "fieldwatch-alerts", "the alert state", schema)
	if err != nil {
		return nil, err
	}
	return &db{sql: s}, nil
}

func (d *db) close() error { return d.sql.Close() }

func keyString(rule string, k skey) string {
	return strings.Join([]string{rule, k.gw, k.dev, k.met}, "\x1f")
}

// checkpointEvery is how often windows and accumulators that moved without
// changing an alert are written.
const checkpointEvery = 30 * time.Second

// flush writes changed series and new history in one transaction; with
// all (or when a checkpoint is due) also series whose windows moved.
func (e *Engine) flush(ctx context.Context, all bool) error {
	now := time.Now()
	checkpoint := all || now.Sub(e.db.lastCheck) >= checkpointEvery
	rows := e.dirty
	if checkpoint {
		for _, s := range e.moved {
			if !s.dirty {
				rows = append(rows, s)
			}
		}
	}
	if len(rows) == 0 && len(e.hist) == 0 {
		if checkpoint {
			e.db.lastCheck = now
		}
		return nil
	}
	tx, err := e.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot save alert state: %w", err)
	}
	defer tx.Rollback()
	for _, s := range rows {
		data, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("BUG: cannot encode alert state: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO series (key, data) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET data = excluded.data`, keyString(s.rule.ID, s.key), data); err != nil {
			return fmt.Errorf("cannot save alert state: %w", err)
		}
	}
	for _, h := range e.hist {
		data, _ := json.Marshal(h)
		if _, err := tx.ExecContext(ctx, `INSERT INTO history (fingerprint, rule, gateway, site, device, t, data)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, h.Fingerprint, h.Rule, h.Labels["gateway_id"], h.Labels["site"],
			h.Labels["device"], h.Time.UnixNano(), data); err != nil {
			return fmt.Errorf("cannot save alert history: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot save alert state: %w", err)
	}
	e.handOff(rows)
	for _, s := range rows {
		s.dirty = false
		if checkpoint {
			s.winDirty = false
		}
	}
	e.dirty = e.dirty[:0]
	if checkpoint {
		e.moved = e.moved[:0]
		e.db.lastCheck = now
	}
	e.hist = e.hist[:0]
	return nil
}

// restore takes one saved series (its key and JSON) into the engine; a
// series of a rule that is gone, or damaged, is dropped (nil).
func (e *Engine) restore(byID map[string]*crule, key string, data []byte) *series {
	parts := strings.Split(key, "\x1f")
	c := byID[parts[0]]
	if len(parts) != 4 || c == nil || (c.Kind == rules.NoData && c != e.devRule && c != e.gwRule &&
		c != e.busRule && c != e.intakeRule) {
		return nil // a rule that is gone, or a nodata rule that now tunes DeviceSilent
	}
	s := &series{rule: c, key: skey{c.idx, parts[1], parts[2], parts[3]}}
	if err := json.Unmarshal(data, s); err != nil {
		e.log.Warn("damaged alert state dropped", "series", strings.ReplaceAll(key, "\x1f", "/"), "err", err)
		return nil
	}
	s.Levels, s.Source = c.LevelsFor(s.key.gw, s.A.Labels["device"], s.A.Labels["site"], s.A.Labels["profile"])
	e.series[s.key] = s
	e.index(s)
	if s.A.State == alert.Firing || s.Pub.Firing {
		e.settling[s] = true // re-check muting and publication after the restart
	}
	return s
}

// rulesByID maps the engine's rules by id.
func (e *Engine) rulesByID() map[string]*crule {
	byID := map[string]*crule{}
	for _, c := range e.rules {
		byID[c.ID] = c
	}
	return byID
}

// load restores series and silences; series of rules that no longer exist
// are dropped.
func (e *Engine) load() error {
	byID := e.rulesByID()
	rows, err := e.db.sql.Query(`SELECT key, data FROM series`)
	if err != nil {
		return fmt.Errorf("cannot read alert state: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var key string
		var data []byte
		if err := rows.Scan(&key, &data); err != nil {
			return fmt.Errorf("cannot read alert state: %w", err)
		}
		if e.restore(byID, key, data) != nil {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read alert state: %w", err)
	}
	srows, err := e.db.sql.Query(`SELECT data FROM silences`)
	if err != nil {
		return fmt.Errorf("cannot read silences: %w", err)
	}
	defer srows.Close()
	for srows.Next() {
		var data []byte
		if err := srows.Scan(&data); err != nil {
			return err
		}
		si := &alert.Silence{}
		if err := json.Unmarshal(data, si); err != nil || si.Check() != nil {
			continue
		}
		e.silences = append(e.silences, si)
	}
	if n > 0 {
		e.log.Info("alert state restored", "series", n, "silences", len(e.silences))
	}
	return srows.Err()
}

func (e *Engine) saveSilence(ctx context.Context, si *alert.Silence) error {
	data, _ := json.Marshal(si)
	_, err := e.db.sql.ExecContext(ctx, `INSERT INTO silences (id, data) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET data = excluded.data`, si.ID, data)
	return err
}
