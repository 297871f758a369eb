package ingest

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// gatedStore holds the first group commit holding gateway gw's batches
// until open is closed, telling entered when it arrives, and records the
// gateways of every group it writes.
type gatedStore struct {
	store.Store
	gw      string
	open    chan struct{}
	entered chan struct{}
	once    atomic.Bool
	mu      sync.Mutex
	groups  [][]string
}

func (s *gatedStore) WriteGroup(ctx context.Context, g *store.Group) error {
	var gws []string
	for _, b := range g.Batches {
		gws = append(gws, b.Gateway)
	}
	s.mu.Lock()
	s.groups = append(s.groups, gws)
	s.mu.Unlock()
	if slices.Contains(gws, s.gw) && s.once.CompareAndSwap(false, true) {
		close(s.entered)
		select {
		case <-s.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.WriteGroup(ctx, g)
}

func (s *gatedStore) written() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.groups)
}

// waiting reports whether gateway gw has a batch waiting for its group.
func (in *Ingestor) waiting(gw string) bool {
	in.line.mu.Lock()
	defer in.line.mu.Unlock()
	return in.line.queues[gw] != nil
}

// TestFloodDoesNotHoldBackOthers: gateway gw-x publishes eight batches of
// the most items a batch may hold, and the store holds the first group
// with gw-x's batches, so the rest of gw-x's flood waits in line; gw-y
// then publishes one small batch. gw-y's batch must go in the first group
// formed after gw-x's next turn, ahead of the rest of the flood,
// which is impossible for a first-come first-served line (it would wait
// behind all of gw-x's batches). Then gw-x's batches are all stored and acknowledged, in order.
func TestFloodDoesNotHoldBackOthers(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	st := &gatedStore{Store: openSQLite(t), gw: "gw-x", open: make(chan struct{}), entered: make(chan struct{})}
	// One group at a time: the line's order alone decides what the group
	// after the held one holds.
	r := startIngest(t, url, st, func(o *Options) { o.Workers, o.MaxGroupsInFlight = 4, 1 })
	t.Cleanup(func() {
		select {
		case <-st.open:
		default:
			close(st.open) // let a failing test's writes go, so the ingestor stops
		}
	})
	x, y := newGateway(t, url, "gw-x"), newGateway(t, url, "gw-y")
	const flood = 8
	n := telemetry.MaxReadings
	for i := range flood {
		x.publish(t, telemetry.UpTopic("gw-x"), encode(t, "gw-x", uint64(1+i*n), n))
	}
	select {
	case <-st.entered: // a group with gw-x's first batch is in the store, the rest of the flood behind it
	case <-time.After(wait):
		t.Fatal("gw-x's first batch never reached the store")
	}
	y.publish(t, telemetry.UpTopic("gw-y"), encode(t, "gw-y", 1, 3))
	testenv.Eventually(t, "gw-y's batch in line", wait, func() bool { return r.in.waiting("gw-y") })
	if got := len(x.ackList()); got != 0 {
		t.Fatalf("gw-x has %d acks while its first group is held; want 0", got)
	}
	close(st.open)
	testenv.Eventually(t, "gw-y's ack", wait, func() bool { return len(y.ackList()) == 1 })
	if a := y.ackList()[0]; a.First != 1 || a.Last != 3 {
		t.Fatalf("gw-y's ack %+v", a)
	}
	// A batch of gw-x's fills a group: gw-x's next batch (in line before
	// gw-y's) may have its turn first, then gw-y's, not the rest of the flood.
	if groups := st.written(); !slices.ContainsFunc(groups[:min(3, len(groups))], func(g []string) bool { return slices.Contains(g, "gw-y") }) {
		t.Fatalf("groups written %v: gw-y's batch is not among the two groups after the held one", groups)
	}
	testenv.Eventually(t, "gw-x's acks", 2*wait, func() bool { return len(x.ackList()) == flood })
	for i, a := range x.ackList() {
		if want := uint64(1 + i*n); a.First != want || a.Last != want+uint64(n)-1 || a.Through != a.Last {
			t.Fatalf("gw-x's ack %d: %+v; want %d…%d, through its last: stored in order", i, a, want, want+uint64(n)-1)
		}
	}
	// The last batch's last readings are in the store.
	last := t0.Add(time.Duration(flood*n) * time.Second)
	got, err := r.store.Series(context.Background(), store.SeriesQuery{Gateway: "gw-x", Device: "soil-1",
		Metric: "soil_moisture", From: last.Add(-time.Minute), To: last.Add(time.Second)})
	if err != nil || len(got) != 61 {
		t.Fatalf("the flood's last minute: %d samples (%v), want 61", len(got), err)
	}
	if h := r.in.Health(); h != "" {
		t.Fatalf("health %q after the flood", h)
	}
}
