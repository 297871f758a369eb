package ingest

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// TestRestoredClaims: a cloud restored from a backup does not take a
// gateway's Committed claim beyond its commit record as stored: it records
// the batch's own range and asks the gateway to send again from after its
// record, until the record reaches the claim — by the resent batches, or
// by the gateway's not_kept gap for what it no longer has. A cloud that
// was not restored takes the claim, as before.
func TestRestoredClaims(t *testing.T) {
	gap := func(gw string, from, to float64) telemetry.Event {
		return telemetry.Event{Device: gw, Kind: telemetry.EventGap, Key: "not-kept", Time: t0,
			Attrs:  map[string]string{"reason": telemetry.GapNotKept, "policy": "keep_acked"},
			Values: map[string]float64{"from_seq": from, "to_seq": to, "count": to - from + 1}}
	}
	reading := telemetry.Reading{Device: "d", Metric: "m", Value: 1, Time: t0}
	cases := []struct {
		name        string
		restored    bool
		record      store.Commit
		committed   uint64
		first, last uint64
		events      []telemetry.Event
		wantThrough uint64
		wantResend  uint64
		wantLost    float64
		wantBad     float64
	}{
		{name: "not restored: the claim is taken", record: store.Commit{Through: 100}, committed: 500, first: 501, last: 510,
			wantThrough: 510},
		{name: "restored: the claim is not taken", restored: true, record: store.Commit{Through: 100}, committed: 500,
			first: 501, last: 510, wantThrough: 100, wantResend: 101},
		{name: "restored: a resent batch extends the record", restored: true, record: store.Commit{Through: 100},
			committed: 100, first: 101, last: 110, wantThrough: 110},
		{name: "restored: a claim within the record", restored: true, record: store.Commit{Through: 600}, committed: 500,
			first: 501, last: 510, wantThrough: 600},
		{name: "restored: not kept settles the hole", restored: true,
			record: store.Commit{Through: 100, Above: []store.Span{{First: 501, Last: 510}}}, committed: 510, first: 511, last: 512,
			events: []telemetry.Event{gap("gw", 101, 500)}, wantThrough: 512, wantLost: 400},
		{name: "restored: not kept of what was stored after the restore is not lost", restored: true,
			record: store.Commit{Through: 100, Above: []store.Span{{First: 101, Last: 200}}}, committed: 300, first: 301, last: 302,
			events: []telemetry.Event{gap("gw", 101, 300)}, wantThrough: 302, wantLost: 100},
		{name: "restored: a not_kept gap of another device is ignored", restored: true, record: store.Commit{Through: 100},
			committed: 500, first: 501, last: 502, events: []telemetry.Event{gap("other", 101, 500)}, wantThrough: 100,
			wantResend: 101, wantBad: 1},
		{name: "restored: a not_kept gap beyond its batch is ignored", restored: true, record: store.Commit{Through: 100},
			committed: 500, first: 501, last: 502, events: []telemetry.Event{gap("gw", 101, 900)}, wantThrough: 100,
			wantResend: 101, wantBad: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry())
			in := New(Options{Store: openSQLite(t), Registry: registry.New(), Log: slog.New(slog.DiscardHandler), Metrics: m,
				Restored: tc.restored})
			b := &telemetry.Batch{Gateway: "gw", Stream: "s1", FirstSeq: tc.first, Committed: tc.committed,
				Readings: make([]telemetry.Reading, tc.last-tc.first+1-uint64(len(tc.events))), Events: tc.events}
			for i := range b.Readings {
				b.Readings[i] = reading
				b.Readings[i].Time = t0.Add(time.Duration(i) * time.Second)
			}
			p := &pending{gw: "gw", b: b, first: tc.first, last: tc.last}
			got, resend := in.extend(tc.record, p)
			if got.Through != tc.wantThrough || resend != tc.wantResend {
				t.Fatalf("record %+v, resend_from %d; want through %d, resend_from %d", got, resend, tc.wantThrough, tc.wantResend)
			}
			if !got.Covers(tc.first, tc.last) {
				t.Fatalf("record %+v does not cover the batch %d..%d", got, tc.first, tc.last)
			}
			if lost := testutil.ToFloat64(m.restored.notKept); lost != tc.wantLost {
				t.Fatalf("lost %v; want %v", lost, tc.wantLost)
			}
			if bad := testutil.ToFloat64(m.restored.badGaps); bad != tc.wantBad {
				t.Fatalf("bad gaps %v; want %v", bad, tc.wantBad)
			}
		})
	}
}
