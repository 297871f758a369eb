package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/storetest"
	"github.com/fieldwatch/fieldwatch/telemetry"
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
	t.Run("groups", func(t *testing.T) { storetest.RunGroups(t, open) })
}

// TestOpensOlderFile: a file made before the delay column gets it; its old
// readings count as received with no delay known, new ones have theirs.
func TestOpensOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(schema, "\tdelay   INTEGER,          -- ns from acquisition to storage; NULL when not known (stats.go)\n", "", 1)
	if old == schema {
		t.Fatal("the test no longer knows the schema's delay column")
	}
	t0 := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	if _, err := db.Exec(old); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO series (id, gateway, site, device, metric, unit) VALUES (1, 'gw1', '', 'd', 'm', '%');
		INSERT INTO points (series, t, value, quality, clock) VALUES (1, ?, 1.5, 0, 1)`, t0.UnixNano()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := &telemetry.Batch{Gateway: "gw1", Stream: "s", FirstSeq: 1,
		Readings: []telemetry.Reading{{Device: "d", Metric: "m", Unit: "%", Value: 2.5, Time: t0.Add(time.Second)}}}
	if err := s.WriteBatch(context.Background(), b, nil, store.Commit{}.With(0, 1, 1), t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Stats(context.Background(), store.StatsQuery{Gateway: "gw1", Bounds: []time.Time{t0, t0.Add(time.Hour)}})
	if err != nil || len(got) != 1 {
		t.Fatalf("stats %+v, %v", got, err)
	}
	if p := got[0].Periods[0]; p.Received != 2 || p.Delays != 1 || *p.DelayMax != 2 || *p.Mean != 2 {
		t.Fatalf("after the upgrade: %+v", p)
	}
}
