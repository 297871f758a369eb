package ingest

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// downStore fails group writes while down is set, and the first failFirst
// of them whatever down says.
type downStore struct {
	store.Store
	down      atomic.Bool
	failFirst atomic.Int64
	calls     atomic.Int64
}

func (s *downStore) WriteGroup(ctx context.Context, g *store.Group) error {
	if n := s.calls.Add(1); s.down.Load() || n <= s.failFirst.Load() {
		return errors.New("store down")
	}
	return s.Store.WriteGroup(ctx, g)
}

// announce publishes gw's online state, listing accepts; retained as a
// gateway does.
func (g *gateway) announce(t *testing.T, accepts ...string) {
	t.Helper()
	data, err := telemetry.EncodeState(telemetry.State{State: telemetry.StateOnline, Accepts: accepts})
	if err != nil {
		t.Fatal(err)
	}
	if tok := g.client.Publish(telemetry.StateTopic(g.id), 1, true, data); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

// TestStoreFailureRefusedWithHint: a group the store keeps failing is held
// for StoreHold, then refused: a gateway that accepts it gets a refusal with
// a retry hint (and no ack), an older gateway nothing at all; once the
// store is back, the batch sent again is stored and acknowledged.
func TestStoreFailureRefusedWithHint(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	st := &downStore{Store: openSQLite(t)}
	st.down.Store(true)
	r := startIngest(t, url, st, func(o *Options) { o.StoreHold = 300 * time.Millisecond })
	gw, old := newGateway(t, url, "gw1"), newGateway(t, url, "gw-old")
	gw.announce(t, telemetry.AckRetry, telemetry.AckOnline)
	old.announce(t)
	testenv.Eventually(t, "states taken", wait, func() bool {
		return testutil.ToFloat64(r.in.m.states.WithLabelValues("online")) == 2
	})
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 1, 3))
	old.publish(t, telemetry.UpTopic("gw-old"), encode(t, "gw-old", 1, 3))
	testenv.Eventually(t, "a refusal", wait, func() bool { return len(gw.ackList()) == 1 })
	a := gw.ackList()[0]
	if !a.Refused() || a.Resync || a.Stream != "s1" || a.First != 1 || a.Last != 3 || a.Through != 0 ||
		a.RetryMS < uint32(RetryHint.Milliseconds()/2) || a.RetryMS > uint32(3*RetryHint.Milliseconds()/2) {
		t.Fatalf("answer %+v; want a refusal of 1…3 with a hint of %v ± 50 %%", a, RetryHint)
	}
	testenv.Eventually(t, "both batches given up", wait, func() bool { return testutil.ToFloat64(r.in.m.storeErrors) == 2 })
	if n := testutil.ToFloat64(r.in.m.refusals); n != 1 {
		t.Fatalf("%v refusals sent; want 1: the older gateway is sent nothing it would refuse", n)
	}
	if testutil.ToFloat64(r.in.m.storeRetries) == 0 {
		t.Fatal("the failed writes were not retried while held")
	}
	st.down.Store(false)
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 1, 3))
	testenv.Eventually(t, "the ack", wait, func() bool { return len(gw.ackList()) == 2 })
	if a := gw.ackList()[1]; a.Refused() || a.Through != 3 {
		t.Fatalf("answer once the store is back %+v; want an ack through 3", a)
	}
	if n := len(old.ackList()); n != 0 {
		t.Fatalf("the older gateway got %d answers for a batch that was not stored", n)
	}
}

// TestHeldWriteStoredWhenStoreReturns: a store that fails a few times and
// comes back within the hold is written by the cloud itself: the batch is
// acknowledged without being refused or sent again.
func TestHeldWriteStoredWhenStoreReturns(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	st := &downStore{Store: openSQLite(t)}
	st.failFirst.Store(3)
	r := startIngest(t, url, st, func(o *Options) { o.StoreHold = wait })
	gw := newGateway(t, url, "gw1")
	gw.announce(t, telemetry.AckRetry)
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 1, 3))
	testenv.Eventually(t, "an answer", wait, func() bool { return len(gw.ackList()) == 1 })
	if a := gw.ackList()[0]; a.Refused() || a.Through != 3 {
		t.Fatalf("answer %+v; want an ack through 3", a)
	}
	if n, e := testutil.ToFloat64(r.in.m.storeRetries), testutil.ToFloat64(r.in.m.storeErrors); n != 3 || e != 0 {
		t.Fatalf("%v retries, %v batches given up; want 3 and 0", n, e)
	}
}

// TestOnlineNotice: an ingestor that subscribes gets the gateways'
// retained states from the broker, and sends each gateway online that
// accepts it an online notice (what it published before may have reached
// no one); not an older gateway, and not for a state published later. On
// both brokers: the embedded one's ACL lets the ingestor write every
// gateway's ack topic, and marks the states it replays as retained.
func TestOnlineNotice(t *testing.T) {
	for name, start := range brokers(t) {
		t.Run(name, func(t *testing.T) {
			b := start(t)
			gw, old := newGateway(t, b.url, "gw1"), newGateway(t, b.url, "gw-old")
			gw.announce(t, telemetry.AckRetry, telemetry.AckOnline)
			old.announce(t, telemetry.AckRetry)
			r := startIngest(t, b.url, openSQLite(t), b.ingest)
			testenv.Eventually(t, "the online notice", wait, func() bool { return len(gw.ackList()) == 1 })
			if a := gw.ackList()[0]; a != (telemetry.Ack{Online: true}) {
				t.Fatalf("answer %+v; want the online notice", a)
			}
			later := newGateway(t, b.url, "gw-later")
			later.announce(t, telemetry.AckOnline) // heard live: this cloud was subscribed
			testenv.Eventually(t, "states taken", wait, func() bool {
				return testutil.ToFloat64(r.in.m.states.WithLabelValues("online")) == 3
			})
			if n := testutil.ToFloat64(r.in.m.onlineNotices); n != 1 {
				t.Fatalf("%v online notices; want 1, to gw1 only", n)
			}
		})
	}
}

// TestReplayDefiningContextIsStored: a gateway restarted with a new
// compact context resends a batch the cloud had stored (its ack was lost);
// the replay defines the new context, which is stored before the ack
// confirms it, so the gateway's next batch, which refers to it, is stored
// rather than refused for an unknown context — by this ingestor and by the
// next.
func TestReplayDefiningContextIsStored(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	st := openSQLite(t)
	gw := newGateway(t, url, "gw1")
	send := func(enc *telemetry.CompactEncoder, first uint64) telemetry.Ack { return sendCompact(t, gw, enc, first) }
	r := startIngest(t, url, st)
	before := telemetry.NewCompactEncoder("gw1", "north", "s1")
	send(before, 1) // stored; say its ack is lost, and the gateway restarts
	after := telemetry.NewCompactEncoder("gw1", "north", "s1")
	if a := send(after, 1); a.Refused() || a.Through != 5 {
		t.Fatalf("the replay answered %+v", a)
	}
	if n := testutil.ToFloat64(r.in.m.duplicates); n != 1 {
		t.Fatalf("%v replays recognised; want 1", n)
	}
	if a := send(after, 6); a.Refused() || a.Through != 10 {
		t.Fatalf("the batch after the replay answered %+v; want stored", a)
	}
	r.stop()
	if _, err := st.CompactContext(context.Background(), "gw1", after.ID(), 1); err != nil {
		t.Fatalf("the replay's context is not in the store: %v", err)
	}
	startIngest(t, url, st) // a restart: its memory is empty
	if a := send(after, 11); a.Refused() || a.Through != 15 {
		t.Fatalf("after a restart the batch answered %+v; want stored", a)
	}
}

// firstFails fails every write of a group holding the batch of sequence 1,
// and counts the writes of the others.
type firstFails struct {
	store.Store
	others atomic.Int64
}

func (s *firstFails) WriteGroup(ctx context.Context, g *store.Group) error {
	for _, b := range g.Batches {
		if b.FirstSeq == 1 {
			return errors.New("disk full")
		}
	}
	s.others.Add(1)
	return s.Store.WriteGroup(ctx, g)
}

// TestExtendingGroupNotRetried: a group whose own write succeeded but which
// extends a group that failed after its hold fails with it, at once: it is
// not held and written again, which could not help.
func TestExtendingGroupNotRetried(t *testing.T) {
	st := &firstFails{Store: openSQLite(t)}
	in := New(Options{Store: st, Registry: registry.New(), Log: slog.New(slog.DiscardHandler),
		Metrics: NewMetrics(prometheus.NewRegistry()), StoreHold: 3 * time.Second}) // batch 2 comes while batch 1 is held
	batch := func(first uint64) *telemetry.Batch {
		return &telemetry.Batch{Gateway: "hydro-1", Stream: "s", FirstSeq: first, Readings: []telemetry.Reading{
			{Device: "st-1", Metric: "water_level", Unit: "m", Value: 1, Time: t0.Add(time.Duration(first) * time.Second)}}}
	}
	first := make(chan error, 1)
	go func() { _, err := in.Submit(context.Background(), batch(1)); first <- err }()
	testenv.Eventually(t, "the first group held", wait, func() bool { return testutil.ToFloat64(in.m.storeRetries) > 0 })
	if _, err := in.Submit(context.Background(), batch(2)); !errors.Is(err, ErrNotStored) {
		t.Fatalf("the batch extending a failed one: %v; want ErrNotStored", err)
	}
	if err := <-first; !errors.Is(err, ErrNotStored) {
		t.Fatalf("the first batch: %v; want ErrNotStored", err)
	}
	in.Settle()
	if n := st.others.Load(); n != 1 {
		t.Fatalf("the extending group was written %d times; want once", n)
	}
}
