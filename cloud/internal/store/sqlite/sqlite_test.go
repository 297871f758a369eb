package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	open := func(t *testing.T) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "db", "fieldwatch.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	storetest.Run(t, open)
	t.Run("events", func(t *testing.T) { storetest.RunEvents(t, open) })
	t.Run("commits", func(t *testing.T) { storetest.RunCommits(t, open) })
	t.Run("stats", func(t *testing.T) { storetest.RunStats(t, open) })
}
