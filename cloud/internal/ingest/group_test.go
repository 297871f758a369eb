package ingest

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// heldStore holds its first group write until release says how it ends
// (nil: written), and tells entered as each group write begins.
type heldStore struct {
	store.Store
	entered chan int
	release chan error
	calls   int
}

func (s *heldStore) WriteGroup(ctx context.Context, g *store.Group) error {
	s.calls++ // the test starts each group once the one before has begun
	n := s.calls
	s.entered <- n
	if n == 1 {
		if err := <-s.release; err != nil {
			return err
		}
	}
	return s.Store.WriteGroup(ctx, g)
}

// TestGroupsInFlight: a stream's second batch forms a group while the
// group with its first batch is still being written, and a replay of that
// first batch arrives too. Both wait for the first group: if it is stored,
// the second batch is stored and the replay answered as one, each only
// then, and the commit record covers both; if it fails, neither is
// confirmed (the second batch's commit record would claim the first's
// sequences), no commit record is written, and both are stored when sent
// again. A first group whose write fails once is held and written again
// (recovery.go): then it is as if it had been stored at once.
func TestGroupsInFlight(t *testing.T) {
	batch := func(first uint64) *telemetry.Batch {
		return &telemetry.Batch{Gateway: "hydro-1", Stream: "s", FirstSeq: first, Readings: []telemetry.Reading{
			{Device: "st-1", Metric: "water_level", Unit: "m", Value: float64(first), Time: t0.Add(time.Duration(first) * time.Second)},
			{Device: "st-1", Metric: "rainfall", Unit: "mm", Value: 4, Time: t0.Add(time.Duration(first) * time.Second)},
		}}
	}
	for _, tc := range []struct {
		name        string
		first       error
		second      error     // what Submit of the second batch returns
		replay      Submitted // and of the replay, when it succeeds
		replayErr   error
		wantThrough uint64
		hold        time.Duration // Options.StoreHold
	}{
		{name: "first group stored", second: nil, replay: Duplicate, wantThrough: 4},
		// Not held: the failure is final.
		{name: "first group fails", first: errors.New("disk full"), second: ErrNotStored, replayErr: ErrNotStored, wantThrough: 0,
			hold: time.Nanosecond},
		{name: "first group fails once, retried", first: errors.New("connection refused"), second: nil, replay: Duplicate,
			wantThrough: 4, hold: wait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &heldStore{Store: openSQLite(t), entered: make(chan int, 8), release: make(chan error, 1)}
			in := New(Options{Store: st, Registry: registry.New(), Log: slog.New(slog.DiscardHandler),
				Metrics: NewMetrics(prometheus.NewRegistry()), StoreHold: tc.hold})
			ctx := context.Background()
			type result struct {
				s   Submitted
				err error
			}
			submit := func(b *telemetry.Batch) chan result {
				c := make(chan result, 1)
				go func() { s, err := in.Submit(ctx, b); c <- result{s, err} }()
				return c
			}
			enter := func(want int) {
				t.Helper()
				select {
				case n := <-st.entered:
					if n != want {
						t.Fatalf("group write %d began, want %d", n, want)
					}
				case <-time.After(wait):
					t.Fatalf("group write %d never began", want)
				}
			}
			first := submit(batch(1))
			enter(1) // held
			second := submit(batch(3))
			enter(2) // formed while the first is in flight: waits for it
			replay := submit(batch(1))
			enter(3)
			select {
			case r := <-second:
				t.Fatalf("second batch answered %v, %v while the first group is still being written", r.s, r.err)
			case r := <-replay:
				t.Fatalf("replay answered %v, %v while the batch it repeats is still being written", r.s, r.err)
			default:
			}
			st.release <- tc.first
			if r := <-first; (r.err == nil) != (tc.first == nil || tc.hold > time.Nanosecond) {
				t.Fatalf("first batch: %v, %v", r.s, r.err)
			}
			if r := <-second; !errors.Is(r.err, tc.second) || (r.err == nil && r.s != Stored) {
				t.Fatalf("second batch: %v, %v; want %v", r.s, r.err, tc.second)
			}
			if r := <-replay; !errors.Is(r.err, tc.replayErr) || (r.err == nil && r.s != tc.replay) {
				t.Fatalf("replay: %v, %v; want %v, %v", r.s, r.err, tc.replay, tc.replayErr)
			}
			in.running.Wait() // acknowledged before their commit records are written: wait for those
			if c, err := st.Committed(ctx, "hydro-1", "s"); err != nil || c.Through != tc.wantThrough || len(c.Above) != 0 {
				t.Fatalf("commit record %+v, %v; want through %d", c, err, tc.wantThrough)
			}
			// Sent again (the sender was not confirmed, or was): all stored once.
			for _, f := range []uint64{1, 3} {
				if _, err := in.Submit(ctx, batch(f)); err != nil {
					t.Fatalf("batch %d sent again: %v", f, err)
				}
			}
			in.running.Wait()
			if c, err := st.Committed(ctx, "hydro-1", "s"); err != nil || c.Through != 4 {
				t.Fatalf("commit record after sending again %+v, %v; want through 4", c, err)
			}
			got, err := st.Series(ctx, store.SeriesQuery{Gateway: "hydro-1", Device: "st-1", Metric: "water_level",
				From: t0, To: t0.Add(time.Minute)})
			if err != nil || len(got) != 2 {
				t.Fatalf("water level series %+v, %v; want the 2 readings", got, err)
			}
		})
	}
}
