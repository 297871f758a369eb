package ingest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// gatedStore holds gateway gw's writes until open is closed, telling
// entered when the first one arrives.
type gatedStore struct {
	store.Store
	gw      string
	open    chan struct{}
	entered chan struct{}
	once    atomic.Bool
}

func (s *gatedStore) WriteBatch(ctx context.Context, b *telemetry.Batch, def *telemetry.CompactContext, c store.Commit, stored time.Time) error {
	if b.Gateway == s.gw {
		if s.once.CompareAndSwap(false, true) {
			close(s.entered)
		}
		select {
		case <-s.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.WriteBatch(ctx, b, def, c, stored)
}

// TestFloodDoesNotHoldBackOthers: gateway gw-x publishes eight batches of
// the most items a batch may hold, and the store holds every write of
// gw-x's until gw-y's ack has arrived; gw-y then publishes one small batch.
// gw-y's batch must be stored and acknowledged while all eight of gw-x's
// wait, which is impossible for a first-come first-served pool (its four
// workers all end up on gw-x's batches, one in the store and three on the
// stream's lock, and gw-y's batch waits behind them: this test times out
// on it). Then gw-x's batches are all stored and acknowledged, in order.
func TestFloodDoesNotHoldBackOthers(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	st := &gatedStore{Store: openSQLite(t), gw: "gw-x", open: make(chan struct{}), entered: make(chan struct{})}
	r := startIngest(t, url, st, func(o *Options) { o.Workers = 4 })
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
	case <-st.entered: // gw-x's first batch is in the store, the rest queued behind it
	case <-time.After(wait):
		t.Fatal("gw-x's first batch never reached the store")
	}
	y.publish(t, telemetry.UpTopic("gw-y"), encode(t, "gw-y", 1, 3))
	testenv.Eventually(t, "gw-y's ack, with gw-x's flood held in the store", wait, func() bool { return len(y.ackList()) == 1 })
	if got := len(x.ackList()); got != 0 {
		t.Fatalf("gw-x has %d acks while its writes are held; want 0", got)
	}
	if a := y.ackList()[0]; a.First != 1 || a.Last != 3 {
		t.Fatalf("gw-y's ack %+v", a)
	}
	close(st.open)
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
