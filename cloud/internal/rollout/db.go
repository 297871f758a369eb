package rollout

import (
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/fieldwatch/fieldwatch/cloud/internal/sqlitefile"
)

// db keeps rollouts in SQLite (data_dir/rollouts.db): each rollout as
// JSON, written whole at every change, and its signed items apart, each
// written once at its upload.
type db struct{ sql *sql.DB }

const schema = `
CREATE TABLE IF NOT EXISTS rollouts (
	id   TEXT PRIMARY KEY,
	data BLOB NOT NULL -- JSON of the Rollout
);
CREATE TABLE IF NOT EXISTS items (
	rollout TEXT NOT NULL,
	gateway TEXT NOT NULL,
	which   TEXT NOT NULL, -- item (the signed change) or revert
	data    BLOB NOT NULL,
	PRIMARY KEY (rollout, gateway, which)
);
`

// openDB opens path; "" keeps everything in memory (lost at a restart).
func openDB(path string) (*db, error) {
	s, err := sqlitefile.Open(path, "fieldwatch-rollouts", "the rollouts", schema)
	if err != nil {
		return nil, err
	}
	return &db{sql: s}, nil
}

func (d *db) close() error { return d.sql.Close() }

func (d *db) save(r *Rollout) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = d.sql.Exec(`INSERT INTO rollouts (id, data) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data`,
		r.ID, b)
	return err
}

func (d *db) saveItem(id, gw, which string, data []byte) error {
	_, err := d.sql.Exec(`INSERT INTO items (rollout, gateway, which, data) VALUES (?, ?, ?, ?)
		ON CONFLICT (rollout, gateway, which) DO UPDATE SET data = excluded.data`, id, gw, which, data)
	return err
}

// load reads every rollout and every item.
func (d *db) load() ([]*Rollout, map[string]map[string]items, error) {
	rows, err := d.sql.Query(`SELECT data FROM rollouts ORDER BY id`)
	if err != nil {
		return nil, nil, err
	}
	var out []*Rollout
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return nil, nil, err
		}
		r := &Rollout{}
		if err := json.Unmarshal(b, r); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("rollout: %w", err)
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	rows, err = d.sql.Query(`SELECT rollout, gateway, which, data FROM items`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	all := map[string]map[string]items{}
	for rows.Next() {
		var id, gw, which string
		var data []byte
		if err := rows.Scan(&id, &gw, &which, &data); err != nil {
			return nil, nil, err
		}
		if all[id] == nil {
			all[id] = map[string]items{}
		}
		it := all[id][gw]
		if which == "item" {
			it.item = data
		} else {
			it.revert = data
		}
		all[id][gw] = it
	}
	return out, all, rows.Err()
}
