package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// cloud plays the ingestor on a real broker: it decodes every batch, keeps
// the readings by sequence, and acks the batches its policy accepts.
type cloud struct {
	t        *testing.T
	client   mqtt.Client
	contexts *telemetry.MemoryContexts // what the compact batches defined
	mu       sync.Mutex
	got      map[uint64]telemetry.Reading
	events   []telemetry.Event
	seen     int // batches received
	policy   func(b *telemetry.Batch) bool
	held     []*telemetry.Batch // batches not acked yet
	resyncs  int                // resync acks sent
	states   []telemetry.State
}

func newCloud(t *testing.T, url string) *cloud {
	c := &cloud{t: t, got: map[uint64]telemetry.Reading{}, policy: func(*telemetry.Batch) bool { return true },
		contexts: &telemetry.MemoryContexts{}}
	c.client = testenv.MQTTClient(t, url, fmt.Sprintf("cloud-%d", time.Now().UnixNano()))
	sub := c.client.Subscribe(telemetry.UpFilter, 1, func(_ mqtt.Client, m mqtt.Message) {
		b, def, err := decodeAny(m.Payload(), "gw1", c.contexts)
		if err == nil && def != nil {
			c.contexts.Put(def) // stored with the batch, before any ack
		}
		if errors.Is(err, telemetry.ErrUnknownContext) {
			// A cloud that never saw the definition (another broker, or
			// the defining batch lost with a broker's memory) asks for it
			// again, as the ingestor does.
			id, first, last, perr := telemetry.PeekCompact(m.Payload())
			if perr != nil {
				t.Errorf("compact batch without a readable header: %v", perr)
				return
			}
			c.mu.Lock()
			c.resyncs++
			c.mu.Unlock()
			c.publish("gw1", telemetry.Ack{First: first, Last: last, Resync: true, Context: id})
			return
		}
		if err != nil {
			t.Errorf("gateway sent a malformed batch: %v", err)
			return
		}
		c.mu.Lock()
		c.seen++
		for i, r := range b.Readings {
			c.got[b.FirstSeq+uint64(i)] = r
		}
		c.events = append(c.events, b.Events...)
		ok := c.policy(b)
		if !ok {
			c.held = append(c.held, b)
		}
		c.mu.Unlock()
		if ok {
			c.ack(b)
		}
	})
	sub.Wait()
	c.client.Subscribe(telemetry.StateFilter, 1, func(_ mqtt.Client, m mqtt.Message) {
		s, err := telemetry.DecodeState(m.Payload())
		if err != nil {
			t.Errorf("bad state: %v", err)
			return
		}
		c.mu.Lock()
		c.states = append(c.states, s)
		c.mu.Unlock()
	}).Wait()
	return c
}

func (c *cloud) ack(b *telemetry.Batch) {
	c.publish(b.Gateway, telemetry.Ack{Stream: b.Stream, First: b.FirstSeq, Last: b.LastSeq()})
}

func (c *cloud) publish(gateway string, a telemetry.Ack) {
	data, err := telemetry.EncodeAck(a)
	if err != nil {
		c.t.Error(err)
		return
	}
	c.client.Publish(telemetry.AckTopic(gateway), 1, false, data)
}

// decodeAny decodes a batch of any codec, as the cloud's ingest does.
func decodeAny(data []byte, gateway string, ctxs telemetry.Contexts) (*telemetry.Batch, *telemetry.CompactContext, error) {
	return telemetry.DecodeAny(context.Background(), data, gateway, ctxs)
}

func (c *cloud) setPolicy(p func(b *telemetry.Batch) bool) {
	c.mu.Lock()
	c.policy = p
	c.mu.Unlock()
}

func (c *cloud) count() (readings, batches int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got), c.seen
}

type rig struct {
	buf    *buffer.Buffer
	up     *Uplink
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry
}

func startUplink(t *testing.T, url string, mod func(*config.Uplink), more ...func(*Options)) *rig {
	t.Helper()
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir(), Fsync: buffer.FsyncOff})
	if err != nil {
		t.Fatal(err)
	}
	return startUplinkOn(t, url, buf, mod, more...)
}

// startUplinkOn is startUplink on a buffer of the test's.
func startUplinkOn(t *testing.T, url string, buf *buffer.Buffer, mod func(*config.Uplink), more ...func(*Options)) *rig {
	t.Helper()
	cfg := config.Default().Uplink
	cfg.Brokers = []string{url}
	cfg.BatchSize = 100
	cfg.BacklogBatchSize = 0 // as batch_size: these tests count batches of 100 (TestBacklogBatches sets it)
	cfg.BatchDelay = 20 * time.Millisecond
	cfg.AckTimeout = time.Minute // no resend on a slow machine unless a test asks for one
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	o := Options{Config: cfg, Gateway: "gw1", Site: "site1", Buffer: buf,
		State: func() telemetry.State { return telemetry.State{Version: "test"} },
		Log:   testLog(), Metrics: NewMetrics(reg)}
	for _, m := range more {
		m(&o)
	}
	up, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{buf: buf, up: up, cancel: cancel, done: make(chan error, 1), reg: reg}
	go func() { r.done <- up.Run(ctx) }()
	t.Cleanup(func() { r.stop(t); buf.Close() })
	return r
}

func (r *rig) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(15 * time.Second):
		t.Error("uplink did not stop")
	}
}

var t0 = time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)

func (r *rig) append(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i += 10 {
		rs := make([]telemetry.Reading, min(10, n-i))
		for j := range rs {
			v := i + j
			rs[j] = telemetry.Reading{Device: "d", Metric: "m", Value: float64(v), Time: t0.Add(time.Duration(v) * time.Millisecond)}
		}
		if _, err := r.buf.Append(rs); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeliversAndTrimsOnAck(t *testing.T) {
	m := testenv.StartMosquitto(t)
	c := newCloud(t, m.URL)
	r := startUplink(t, m.URL, nil)
	r.append(t, 1000)
	testenv.Eventually(t, "buffer emptied by acks", wait, func() bool { return r.buf.Stats().Readings == 0 })
	got, _ := c.count()
	if got != 1000 {
		t.Fatalf("cloud has %d readings, want 1000", got)
	}
	for seq := uint64(1); seq <= 1000; seq++ {
		if v := c.got[seq].Value; v != float64(seq-1) {
			t.Fatalf("seq %d carries %v, want %d", seq, v, seq-1)
		}
	}
	if n := testutil.ToFloat64(r.up.m.resends); n != 0 {
		t.Fatalf("%v resends on a healthy link", n)
	}
	// The retained state says online, and offline after a clean stop.
	testenv.Eventually(t, "online state", wait, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.states) > 0 && c.states[len(c.states)-1].State == telemetry.StateOnline
	})
	r.stop(t)
	testenv.Eventually(t, "offline state", wait, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.states[len(c.states)-1].State == telemetry.StateOffline
	})
}

func TestNothingTrimmedWithoutAck(t *testing.T) {
	m := testenv.StartMosquitto(t)
	c := newCloud(t, m.URL)
	c.setPolicy(func(*telemetry.Batch) bool { return false })
	r := startUplink(t, m.URL, func(u *config.Uplink) { u.AckTimeout = time.Second })
	r.append(t, 250)
	// Without acks the batches come again after the timeout, and nothing
	// leaves the buffer.
	testenv.Eventually(t, "a resend", wait, func() bool { return testutil.ToFloat64(r.up.m.resends) > 0 })
	if n := r.buf.Stats().Readings; n != 250 {
		t.Fatalf("buffer holds %d readings, want all 250", n)
	}
	c.setPolicy(func(*telemetry.Batch) bool { return true })
	testenv.Eventually(t, "buffer emptied once acks flow", wait, func() bool { return r.buf.Stats().Readings == 0 })
}

func TestOutOfOrderAcksTrimContiguously(t *testing.T) {
	m := testenv.StartMosquitto(t)
	c := newCloud(t, m.URL)
	// Hold the first batch; ack the rest as they come.
	first := true
	c.setPolicy(func(b *telemetry.Batch) bool {
		if first {
			first = false
			return false
		}
		return true
	})
	r := startUplink(t, m.URL, func(u *config.Uplink) { u.AckTimeout = time.Minute; u.MaxInFlight = 4 })
	r.append(t, 400)
	testenv.Eventually(t, "four batches seen", wait, func() bool { _, b := c.count(); return b >= 4 })
	testenv.Eventually(t, "acks of batches 2-4 handled", wait, func() bool { return testutil.ToFloat64(r.up.m.acks) >= 3 })
	if n := r.buf.Stats().Readings; n != 400 {
		t.Fatalf("buffer trimmed past the unacknowledged first batch: %d left", n)
	}
	c.mu.Lock()
	held := c.held[0]
	c.mu.Unlock()
	c.ack(held)
	testenv.Eventually(t, "everything trimmed", wait, func() bool { return r.buf.Stats().Readings == 0 })
}

func TestMalformedAckIsCounted(t *testing.T) {
	m := testenv.StartMosquitto(t)
	newCloud(t, m.URL)
	r := startUplink(t, m.URL, nil)
	testenv.Eventually(t, "connected", wait, r.up.Connected)
	pub := testenv.MQTTClient(t, m.URL, "evil")
	for _, p := range []string{`{"stream":`, `{"stream":"x","first":2,"last":1}`, `{"stream":"other","first":1,"last":1}`} {
		pub.Publish(telemetry.AckTopic("gw1"), 1, false, p).Wait()
	}
	testenv.Eventually(t, "three bad acks counted", wait, func() bool { return testutil.ToFloat64(r.up.m.badAcks) == 3 })
}

func TestBrokerRestartLosesNothing(t *testing.T) {
	m := testenv.StartMosquitto(t)
	c := newCloud(t, m.URL)
	r := startUplink(t, m.URL, func(u *config.Uplink) { u.AckTimeout = 3 * time.Second })
	r.append(t, 300)
	testenv.Eventually(t, "first readings delivered", wait, func() bool { return r.buf.Stats().Readings == 0 })
	m.Stop()
	testenv.Eventually(t, "uplink notices", wait, func() bool { return !r.up.Connected() })
	r.append(t, 300) // acquired during the outage
	m.Start(t)
	c2 := newCloud(t, m.URL) // the old cloud client lost its session too
	testenv.Eventually(t, "backlog delivered after restart", wait, func() bool { return r.buf.Stats().Readings == 0 })
	got, _ := c2.count()
	if got != 300 {
		t.Fatalf("after the restart the cloud got %d readings, want the 300 from the outage", got)
	}
	_ = c
}

// wait bounds how long a test waits for an event.
const wait = 30 * time.Second

// TestEventsTravelWithReadings appends events between readings: they reach
// the cloud in the batches and leave the buffer on the acks like readings.
func TestEventsTravelWithReadings(t *testing.T) {
	m := testenv.StartMosquitto(t)
	c := newCloud(t, m.URL)
	r := startUplink(t, m.URL, nil)
	for i := 0; i < 5; i++ {
		r.append(t, 30)
		e := telemetry.Event{Device: "gate", Kind: telemetry.EventTag, Key: fmt.Sprintf("tag-%d", i), Time: t0.Add(time.Duration(i) * time.Second),
			Attrs: map[string]string{"tag_type": "em4100", "state": "present"}, Values: map[string]float64{"count": 1}}
		if _, err := r.buf.AppendEvents([]telemetry.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "buffer emptied by acks", wait, func() bool { return r.buf.Stats().Readings == 0 })
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events) != 5 || c.events[3].Key != "tag-3" || c.events[3].Attrs["tag_type"] != "em4100" {
		t.Fatalf("cloud got events %+v", c.events)
	}
	if len(c.got) != 150 {
		t.Fatalf("cloud got %d readings, want 150", len(c.got))
	}
}

// testLog shows the uplink's log with FIELDWATCH_TEST_LOG=1.
func testLog() *slog.Logger {
	if os.Getenv("FIELDWATCH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}
