package ingest

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// failingStore refuses every batch while fail is set.
type failingStore struct {
	store.Store
	fail bool
}

func (f *failingStore) WriteGroup(ctx context.Context, g *store.Group) error {
	if f.fail {
		return errors.New("store down")
	}
	return f.Store.WriteGroup(ctx, g)
}

// countingEvaluator counts the readings it judged.
type countingEvaluator struct{ readings int }

func (c *countingEvaluator) Observe(_ context.Context, bs ...*telemetry.Batch) error {
	for _, b := range bs {
		c.readings += len(b.Readings)
	}
	return nil
}

// TestSubmit hands batches to the intake as a protocol listener does, with
// no broker: stored and judged once, a replay recognised (not written or
// judged again), a store failure reported so the sender is not confirmed,
// an invalid batch refused.
func TestSubmit(t *testing.T) {
	st := &failingStore{Store: openSQLite(t)}
	reg := registry.New()
	ev := &countingEvaluator{}
	in := New(Options{Store: st, Registry: reg, Alerts: ev, Log: slog.New(slog.DiscardHandler),
		Metrics: NewMetrics(prometheus.NewRegistry())})
	ctx := context.Background()
	batch := func(first uint64) *telemetry.Batch {
		return &telemetry.Batch{Gateway: "hydro-1", Stream: "sl651", FirstSeq: first, Readings: []telemetry.Reading{
			{Device: "0012345678", Metric: "water_level", Unit: "m", Value: 10.49, Time: t0},
			{Device: "0012345678", Metric: "rainfall", Unit: "mm", Value: 4, Time: t0},
		}}
	}
	tests := []struct {
		name    string
		b       *telemetry.Batch
		fail    bool
		want    Submitted
		wantErr bool
		judged  int
	}{
		{name: "new", b: batch(1 << 40), want: Stored, judged: 2},
		{name: "sent again", b: batch(1 << 40), want: Duplicate, judged: 2},
		{name: "store down", b: batch(2 << 40), fail: true, wantErr: true, judged: 4},
		{name: "after the store is back", b: batch(2 << 40), want: Stored, judged: 6},
		{name: "invalid", b: &telemetry.Batch{Gateway: "hydro 1", Stream: "sl651", FirstSeq: 1}, wantErr: true, judged: 6},
	}
	for _, tc := range tests {
		st.fail = tc.fail
		got, err := in.Submit(ctx, tc.b)
		if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
			t.Fatalf("%s: Submit = %v, %v; want %v (error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
		if ev.readings != tc.judged {
			t.Fatalf("%s: %d readings judged, want %d", tc.name, ev.readings, tc.judged)
		}
	}
	if n := testutil.ToFloat64(in.m.duplicates); n != 1 {
		t.Errorf("duplicates counted %v, want 1", n)
	}
	if n := testutil.ToFloat64(in.m.storeErrors); n != 1 {
		t.Errorf("store errors counted %v, want 1", n)
	}
	s, ok := reg.Station("hydro-1")
	if !ok || len(s.Devices) != 1 || len(s.Devices[0].Latest) != 2 {
		t.Fatalf("registry after Submit: %+v", s)
	}
	latest, err := st.Latest(ctx, "hydro-1", t0.Add(-time.Hour))
	if err != nil || len(latest) != 2 {
		t.Fatalf("store latest = %v, %v; want 2 samples", latest, err)
	}
}
