package influx

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/storetest"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestConformance runs the store suite against a real InfluxDB 1.8.10 with
// Flux; each case gets its own database.
func TestConformance(t *testing.T) {
	db := testenv.StartInfluxDB(t)
	var n atomic.Int32
	open := func(t *testing.T) store.Store {
		name := fmt.Sprintf("t%d", n.Add(1))
		if err := db.CreateDatabase(name); err != nil {
			t.Fatal(err)
		}
		s, err := Open(Config{URL: db.URL, Token: db.Token, Bucket: name + "/autogen"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(context.Background()); err != nil {
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
