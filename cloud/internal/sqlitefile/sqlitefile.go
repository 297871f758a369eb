// Package sqlitefile opens the cloud's small SQLite state files (the alert
// engine's, the rollouts'): WAL, synchronous FULL, one connection.
package sqlitefile

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Open opens the file at path and runs schema on it; with path "" an
// in-memory database named memName, lost at the end of the process. what
// names the state in errors ("the alert state").
func Open(path, memName, what, schema string) (*sql.DB, error) {
	dsn := "file:" + memName + "?mode=memory"
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("cannot create the directory of %s: %w", what, err)
		}
		dsn = "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)"
	}
	s, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	s.SetMaxOpenConns(1)
	if _, err := s.Exec(schema); err != nil {
		s.Close()
		return nil, fmt.Errorf("cannot create %s in %s: %w", what, path, err)
	}
	return s, nil
}
