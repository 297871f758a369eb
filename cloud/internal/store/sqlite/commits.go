package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

const commitSchema = `
CREATE TABLE IF NOT EXISTS commits (
	gateway TEXT NOT NULL,
	stream  TEXT NOT NULL,
	through INTEGER NOT NULL,
	above   TEXT NOT NULL,    -- ranges above through, "a-b,c-d"
	PRIMARY KEY (gateway, stream)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contexts (
	gateway TEXT NOT NULL,
	id      INTEGER NOT NULL,
	version INTEGER NOT NULL,
	body    TEXT NOT NULL,    -- the telemetry.CompactContext as JSON
	PRIMARY KEY (gateway, id, version)
) WITHOUT ROWID;
`

// WriteBatch implements store.Store: readings, events, the context and the
// commit record in one transaction.
func (s *Store) WriteBatch(ctx context.Context, b *telemetry.Batch, def *telemetry.CompactContext, c store.Commit, stored time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if len(b.Readings) > 0 {
			if err := writeReadings(ctx, tx, b.Gateway, b.Site, b.Readings, stored); err != nil {
				return err
			}
		}
		if len(b.Events) > 0 {
			if err := writeEvents(ctx, tx, b.Gateway, b.Site, b.Events); err != nil {
				return err
			}
		}
		if def != nil {
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
		_, err := tx.ExecContext(ctx, `INSERT INTO commits (gateway, stream, through, above) VALUES (?, ?, ?, ?)
			ON CONFLICT (gateway, stream) DO UPDATE SET through = excluded.through, above = excluded.above`,
			b.Gateway, b.Stream, int64(c.Through), c.String())
		return err
	})
}

// Committed implements store.Store.
func (s *Store) Committed(ctx context.Context, gateway, stream string) (store.Commit, error) {
	var through int64
	var above string
	err := s.db.QueryRowContext(ctx, `SELECT through, above FROM commits WHERE gateway = ? AND stream = ?`,
		gateway, stream).Scan(&through, &above)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Commit{}, nil
	}
	if err != nil {
		return store.Commit{}, err
	}
	return store.ParseCommit(uint64(through), above)
}

// CompactContext implements store.Store.
func (s *Store) CompactContext(ctx context.Context, gateway string, id, version uint32) (*telemetry.CompactContext, error) {
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT body FROM contexts WHERE gateway = ? AND id = ? AND version = ?`,
		gateway, int64(id), int64(version)).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.UnknownContext(gateway, id, version)
	}
	if err != nil {
		return nil, err
	}
	return store.ParseContext(gateway, id, version, []byte(body))
}
