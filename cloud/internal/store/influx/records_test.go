package influx

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// countingTransport counts the requests a store sends.
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// openRecordsDB opens a store on a new database, and a second store on it
// whose Committed reads only what is stored (it holds no records).
func openRecordsDB(t *testing.T, db *testenv.InfluxDB, name string) (s *Store, stored func() uint64) {
	t.Helper()
	if err := db.CreateDatabase(name); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Config{URL: db.URL, Token: db.Token, Bucket: name + "/autogen"})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := Open(Config{URL: db.URL, Token: db.Token, Bucket: name + "/autogen"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reader.Close() })
	return s, func() uint64 {
		t.Helper()
		c, err := reader.Committed(context.Background(), "gw1", "s1")
		if err != nil {
			t.Fatal(err)
		}
		return c.Through
	}
}

func recordGroup(seq uint64) *store.Group {
	b := &telemetry.Batch{Gateway: "gw1", Stream: "s1", FirstSeq: seq, Readings: []telemetry.Reading{{
		Device: "d1", Metric: "level", Unit: "m", Value: float64(seq), Time: time.Unix(1_700_000_000+int64(seq), 0),
		Quality: telemetry.Good, Clock: telemetry.ClockNTP}}}
	return store.BatchGroup(b, nil, store.Commit{Through: seq}, time.Now())
}

// TestRecordsRideWithData: a group's commit record is written by the next
// group's data request, not one of its own; until then Committed answers
// from what is held; Close writes what is still held.
func TestRecordsRideWithData(t *testing.T) {
	db := testenv.StartInfluxDB(t)
	ctx := context.Background()
	s, stored := openRecordsDB(t, db, "ride")
	s.records.flush = nil // no linger: only a group's request or Close writes records
	count := &countingTransport{next: s.http.Transport}
	s.http.Transport = count

	if err := s.WriteGroup(ctx, recordGroup(1)); err != nil {
		t.Fatal(err)
	}
	if got := count.n.Load(); got != 1 {
		t.Fatalf("%d requests for the first group, want 1 (its data)", got)
	}
	if c, err := s.Committed(ctx, "gw1", "s1"); err != nil || c.Through != 1 {
		t.Fatalf("Committed %+v, %v; want the held record, through 1", c, err)
	}
	if got := stored(); got != 0 {
		t.Fatalf("stored record through %d before a request carried it", got)
	}
	if err := s.WriteGroup(ctx, recordGroup(2)); err != nil {
		t.Fatal(err)
	}
	if got := count.n.Load(); got != 2 {
		t.Fatalf("%d requests for two groups, want 2", got)
	}
	if got := stored(); got != 1 {
		t.Fatalf("stored record through %d after the second group's request, want 1", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got != 2 {
		t.Fatalf("stored record through %d after Close, want 2", got)
	}
}

// TestRecordsLinger: with no group following, a record is written alone.
func TestRecordsLinger(t *testing.T) {
	db := testenv.StartInfluxDB(t)
	ctx := context.Background()
	s, stored := openRecordsDB(t, db, "linger")
	defer s.Close()
	if err := s.WriteGroup(ctx, recordGroup(7)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the record written alone", 30*time.Second, func() bool { return stored() == 7 })
}

// TestRecordsOnlyForward: whatever the order requests are answered in, a
// stream's record that waits again after a failed request is never older
// than one added or taken since.
func TestRecordsOnlyForward(t *testing.T) {
	commit := func(n uint64) []store.StreamCommit {
		return []store.StreamCommit{{Gateway: "gw", Stream: "s", Commit: store.Commit{Through: n}}}
	}
	now := time.Now()
	for _, tc := range []struct {
		name string
		run  func(r *records)
		want uint64 // the record waiting, 0: none
	}{
		{"failed alone waits again", func(r *records) {
			r.add(commit(1))
			_, a := r.take(now)
			r.done(a, false)
		}, 1},
		{"written is gone", func(r *records) {
			r.add(commit(1))
			_, a := r.take(now)
			r.done(a, true)
		}, 0},
		{"older failed after newer added", func(r *records) {
			r.add(commit(1))
			_, a := r.take(now)
			r.add(commit(2))
			r.done(a, false)
		}, 2},
		{"older failed after newer taken", func(r *records) {
			r.add(commit(1))
			_, a := r.take(now)
			r.add(commit(2))
			_, b := r.take(now)
			r.done(a, false)
			r.done(b, true)
		}, 0},
		{"both failed, newer waits", func(r *records) {
			r.add(commit(1))
			_, a := r.take(now)
			r.add(commit(2))
			_, b := r.take(now)
			r.done(b, false)
			r.done(a, false)
		}, 2},
		{"newer failed first, older after", func(r *records) {
			r.add(commit(1))
			_, a := r.take(now)
			r.add(commit(2))
			_, b := r.take(now)
			r.done(a, false)
			r.done(b, false)
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r records
			tc.run(&r)
			got, ok := r.waiting[recordKey{"gw", "s"}]
			if ok != (tc.want != 0) || got.c.Through != tc.want {
				t.Fatalf("waiting %+v (%v), want through %d", got, ok, tc.want)
			}
			if len(r.taken) != 0 {
				t.Fatalf("still taken: %+v", r.taken)
			}
		})
	}
}
