// Package desired keeps what the cloud last published on each gateway's
// retained topics — its signed config envelope and its release manifest —
// so the cloud, not only the broker, holds every gateway's desired state.
// The embedded broker keeps retained messages in memory; a cloud started
// on it publishes what it keeps here again (Republish), and a gateway that
// was offline through a restart still gets the config pushed to it
// (docs/fleet.md, "Where the desired state lives").
package desired

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/sqlitefile"
)

// Kind is what an item is: the topic it is retained on.
type Kind string

// The kinds of item kept.
const (
	Config  Kind = "config"  // a signed config envelope, on fieldwatch/v1/<gw>/config
	Release Kind = "release" // a signed release manifest, on fieldwatch/v1/<gw>/release
)

// Item is what was last published to one gateway on one topic.
type Item struct {
	Kind      Kind
	Gateway   string
	Data      []byte
	Published time.Time
}

// Store keeps items in SQLite (data_dir/desired.db).
type Store struct{ db *sql.DB }

const schema = `
CREATE TABLE IF NOT EXISTS desired (
	gateway   TEXT NOT NULL,
	kind      TEXT NOT NULL,
	data      BLOB NOT NULL,
	published INTEGER NOT NULL, -- Unix nanoseconds
	PRIMARY KEY (gateway, kind)
);
`

// Open opens the store at path; "" keeps it in memory (lost at a restart).
func Open(path string) (*Store, error) {
	db, err := sqlitefile.Open(path, "fieldwatch-desired", "the gateways' desired state", schema)
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Put keeps it, in place of what was kept for the same gateway and kind:
// the newest publication is what the broker retains.
func (s *Store) Put(it Item) error {
	if it.Kind != Config && it.Kind != Release {
		return fmt.Errorf("desired: unknown kind %q", it.Kind)
	}
	if it.Gateway == "" || len(it.Data) == 0 {
		return fmt.Errorf("desired: %s item without a gateway or data", it.Kind)
	}
	_, err := s.db.Exec(`INSERT INTO desired (gateway, kind, data, published) VALUES (?, ?, ?, ?)
		ON CONFLICT (gateway, kind) DO UPDATE SET data = excluded.data, published = excluded.published`,
		it.Gateway, string(it.Kind), it.Data, it.Published.UnixNano())
	return err
}

// All returns every item kept, by gateway then kind.
func (s *Store) All() ([]Item, error) {
	rows, err := s.db.Query(`SELECT gateway, kind, data, published FROM desired ORDER BY gateway, kind`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Item
	for rows.Next() {
		var it Item
		var kind string
		var ns int64
		if err := rows.Scan(&it.Gateway, &kind, &it.Data, &ns); err != nil {
			return nil, err
		}
		it.Kind, it.Published = Kind(kind), time.Unix(0, ns)
		out = append(out, it)
	}
	return out, rows.Err()
}

// Republish publishes every item kept with publish, once ready says the
// link to the broker is up (asked every poll until ctx is done). An item
// that cannot be published is logged and skipped; the others go on. It
// returns how many were published.
func Republish(ctx context.Context, s *Store, ready func() bool, poll time.Duration,
	publish func(context.Context, Item) error, log *slog.Logger) (int, error) {
	items, err := s.All()
	if err != nil || len(items) == 0 {
		return 0, err
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for !ready() {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-t.C:
		}
	}
	n := 0
	for _, it := range items {
		if err := publish(ctx, it); err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			log.Warn("cannot publish a gateway's desired state again; push it again", "gateway", it.Gateway,
				"kind", it.Kind, "published", it.Published, "err", err)
			continue
		}
		n++
	}
	log.Info("published the gateways' desired state again (the embedded broker keeps retained messages in memory)",
		"items", n, "of", len(items))
	return n, nil
}
