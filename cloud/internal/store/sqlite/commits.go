package sqlite

import (
	"context"
	"database/sql"
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
