package uplink

import (
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// arrivals records, per sequence, when a batch carrying it reached the
// cloud and whether it came as backlog.
type arrivals struct {
	mu      sync.Mutex
	at      map[uint64]time.Time
	backlog map[uint64]bool
}

func watch(t *testing.T, url string, c *cloud) *arrivals {
	a := &arrivals{at: map[uint64]time.Time{}, backlog: map[uint64]bool{}}
	testenv.MQTTClient(t, url, "watcher").Subscribe(telemetry.UpFilter, 1, func(_ mqtt.Client, m mqtt.Message) {
		b, def, err := decodeAny(m.Payload(), "gw1", c.contexts)
		if def != nil {
			c.contexts.Put(def)
		}
		if err != nil {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		for s := b.FirstSeq; s <= b.LastSeq(); s++ {
			if _, seen := a.at[s]; !seen {
				a.at[s] = time.Now()
				a.backlog[s] = b.Backlog
			}
		}
	}).Wait()
	return a
}

// TestLiveFirst: after an outage, readings acquired once the link is back
// reach the cloud while the backlog is still waiting, and the backlog is
// marked as such. The order does not depend on how fast anything runs: the
// cloud holds the backlog's acks until the live readings have arrived, so
// the backlog cannot finish first (at most max_in_flight-1 backlog batches
// are out at once, the last slot kept for live data), however slow the
// machine. The ack timeout is an hour so no resend reshuffles the classes.
func TestLiveFirst(t *testing.T) {
	const backlog, rate = 2000, 1000
	m := testenv.StartMosquitto(t)
	newCloud(t, m.URL)
	r := startUplink(t, m.URL, func(u *config.Uplink) {
		u.BacklogRate = rate
		u.BatchSize = 100
		u.AckTimeout = time.Hour
	})
	testenv.Eventually(t, "connected", wait, r.up.Connected)
	m.Stop()
	testenv.Eventually(t, "uplink notices", wait, func() bool { return !r.up.Connected() })
	r.append(t, backlog)
	m.Start(t)
	c := newCloud(t, m.URL)
	c.setPolicy(func(b *telemetry.Batch) bool { return !b.Backlog }) // hold the backlog's acks
	arr := watch(t, m.URL, c)
	// Connected turns true before the uplink has split what waits into a
	// backlog; readings appended in between would join the backlog. The
	// backlog count is set only once that split is made.
	testenv.Eventually(t, "reconnected and the backlog split off", wait, func() bool {
		return r.up.Connected() && r.up.Status().Backlog > 0
	})
	liveFrom := r.buf.Next()
	r.append(t, 10) // live readings
	testenv.Eventually(t, "live readings delivered", wait, func() bool {
		arr.mu.Lock()
		defer arr.mu.Unlock()
		_, ok := arr.at[liveFrom+9]
		return ok
	})
	arr.mu.Lock()
	liveAt := arr.at[liveFrom+9]
	_, backlogDone := arr.at[backlog]
	live := !arr.backlog[liveFrom]
	arr.mu.Unlock()
	if backlogDone {
		t.Fatal("the whole backlog went out although the cloud acknowledged none of it; it was not held behind live data")
	}
	if !live {
		t.Fatal("live readings came marked as backlog")
	}
	if b := r.up.Status().Backlog; b == 0 || b > backlog {
		t.Fatalf("status says %d backlog items wait while the backlog is held; want 1..%d", b, backlog)
	}
	// Release the backlog: acknowledge what was held and everything after.
	c.setPolicy(func(*telemetry.Batch) bool { return true }) // first, so no batch is held after the take
	c.mu.Lock()
	held := c.held
	c.held = nil
	c.mu.Unlock()
	for _, b := range held {
		c.ack(b)
	}
	testenv.Eventually(t, "backlog drained and everything trimmed", 2*wait, func() bool { return r.buf.Stats().Readings == 0 })
	testenv.Eventually(t, "status shows no backlog", wait, func() bool { return r.up.Status().Backlog == 0 })
	arr.mu.Lock()
	defer arr.mu.Unlock()
	for s := uint64(1); s <= backlog; s++ {
		if !arr.backlog[s] {
			t.Fatalf("seq %d of the outage came as live", s)
		}
	}
	if last := arr.at[backlog]; !last.After(liveAt) {
		t.Fatalf("backlog finished at %v, before the live readings at %v", last, liveAt)
	}
	if n := testutil.ToFloat64(r.up.m.readings.WithLabelValues("backlog")); n < backlog {
		t.Fatalf("%v backlog items counted as sent", n)
	}
}

// TestStuckConnectionReplaced: a link that stalls without closing (the
// keepalive would take minutes to notice) is replaced once publishes wait
// publish_timeout, and delivery resumes on the new connection.
func TestStuckConnectionReplaced(t *testing.T) {
	m := testenv.StartMosquitto(t)
	c := newCloud(t, m.URL)
	p := testenv.StartProxy(t, m.Addr)
	r := startUplink(t, p.URL(), func(u *config.Uplink) {
		u.Keepalive = 10 * time.Minute
		u.PublishTimeout = 2 * time.Second
		u.AckTimeout = time.Minute
	})
	r.append(t, 100)
	testenv.Eventually(t, "first readings delivered", wait, func() bool { return r.buf.Stats().Readings == 0 })
	p.Freeze()
	r.append(t, 200)
	testenv.Eventually(t, "stalled connection replaced", wait, func() bool { return testutil.ToFloat64(r.up.m.stuck) >= 1 })
	testenv.Eventually(t, "delivered on the new connection", wait, func() bool { return r.buf.Stats().Readings == 0 })
	if got, _ := c.count(); got != 300 {
		t.Fatalf("cloud has %d readings, want 300", got)
	}
}

// TestBrokerFailover: with the first broker down, the uplink connects to
// the second and delivers there, defining its compact context again for
// the cloud that never saw it; the jittered backoff is observed.
func TestBrokerFailover(t *testing.T) {
	a := testenv.StartMosquitto(t)
	b := testenv.StartMosquitto(t)
	newCloud(t, a.URL)
	cb := newCloud(t, b.URL)
	r := startUplink(t, a.URL, func(u *config.Uplink) { u.Brokers = []string{a.URL, b.URL} })
	r.append(t, 100)
	testenv.Eventually(t, "delivered through the first broker", wait, func() bool { return r.buf.Stats().Readings == 0 })
	a.Stop()
	r.append(t, 100)
	testenv.Eventually(t, "delivered through the second broker", wait, func() bool { return r.buf.Stats().Readings == 0 })
	if got, _ := cb.count(); got != 100 {
		t.Fatalf("second broker's cloud got %d readings, want the 100 after the failover", got)
	}
	// The second cloud never saw the compact context: it asked for it, and
	// the gateway defined it again rather than giving up on the batch.
	cb.mu.Lock()
	asked := cb.resyncs
	cb.mu.Unlock()
	if asked == 0 || testutil.ToFloat64(r.up.m.resyncs) == 0 {
		t.Fatalf("second cloud asked for the context %d times and the gateway counted %v resyncs; want both > 0",
			asked, testutil.ToFloat64(r.up.m.resyncs))
	}
	if n := testutil.CollectAndCount(r.up.m.reconnectWaits); n != 1 {
		t.Fatalf("reconnect wait histogram has %d series", n)
	}
}

// TestBacklogBatchSize: how many items a backlog batch holds, by
// backlog_batch_size, batch_size and backlog_rate.
func TestBacklogBatchSize(t *testing.T) {
	for _, tc := range []struct {
		name                string
		batch, backlogBatch int
		rate, want          int
	}{
		{"default sizes", 500, 5000, 0, 5000},
		{"unset: as batch_size", 100, 0, 0, 100},
		{"smaller than live batches", 500, 50, 0, 50},
		{"a second of the rate", 500, 5000, 2000, 2000},
		{"a slow rate: a live batch", 500, 5000, 10, 500},
		{"a fast rate: the size", 500, 5000, 1_000_000, 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Uplink{BatchSize: tc.batch, BacklogBatchSize: tc.backlogBatch, BacklogRate: tc.rate}
			if got := backlogBatch(c); got != tc.want {
				t.Fatalf("backlogBatch = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestBacklogDrainsInLargerBatches: what waits when the uplink connects
// goes as backlog in batches of backlog_batch_size; live readings in
// batches of batch_size.
func TestBacklogDrainsInLargerBatches(t *testing.T) {
	const backlog = 1000
	m := testenv.StartMosquitto(t)
	c := newCloud(t, m.URL)
	var mu sync.Mutex
	sizes := map[bool][]int{} // by backlog
	c.setPolicy(func(b *telemetry.Batch) bool {
		mu.Lock()
		sizes[b.Backlog] = append(sizes[b.Backlog], b.Len())
		mu.Unlock()
		return true
	})
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir(), Fsync: buffer.FsyncOff})
	if err != nil {
		t.Fatal(err)
	}
	waiting := &rig{buf: buf}
	waiting.append(t, backlog) // acquired while the link was down
	r := startUplinkOn(t, m.URL, buf, func(u *config.Uplink) { u.BatchSize, u.BacklogBatchSize = 100, 400 })
	// A backlog batch at the cloud: the uplink has split what waited off
	// as backlog, so readings appended from now on are live.
	testenv.Eventually(t, "a backlog batch at the cloud", wait, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(sizes[true]) > 0
	})
	r.append(t, 250) // live
	testenv.Eventually(t, "everything delivered", 2*wait, func() bool { return r.buf.Stats().Readings == 0 })
	mu.Lock()
	defer mu.Unlock()
	largest, total := 0, 0
	for _, n := range sizes[true] {
		largest, total = max(largest, n), total+n
	}
	if largest != 400 || total < backlog {
		t.Fatalf("backlog batches %v: want up to 400 items each, %d in all", sizes[true], backlog)
	}
	if len(sizes[false]) == 0 {
		t.Fatal("no live batch")
	}
	for _, n := range sizes[false] {
		if n > 100 {
			t.Fatalf("live batches %v: want at most 100 items each", sizes[false])
		}
	}
}
