package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/broker"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/influx"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/sqlite"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

var t0 = time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)

// gateway is the test's stand-in for a gateway: it publishes and listens
// for acks on its own topic.
type gateway struct {
	id     string
	client mqtt.Client
	mu     sync.Mutex
	acks   []telemetry.Ack
}

func newGateway(t *testing.T, url, id string) *gateway {
	g := &gateway{id: id}
	g.client = testenv.MQTTConnect(t, mqtt.NewClientOptions().AddBroker(url).SetClientID("gw-"+id).SetUsername(id))
	g.client.Subscribe(telemetry.AckTopic(id), 1, g.onAck(t)).Wait()
	return g
}

// onAck records the acks the gateway receives.
func (g *gateway) onAck(t *testing.T) mqtt.MessageHandler {
	return func(_ mqtt.Client, m mqtt.Message) {
		a, err := telemetry.DecodeAck(m.Payload())
		if err != nil {
			t.Errorf("cloud sent a malformed ack: %v", err)
			return
		}
		g.mu.Lock()
		g.acks = append(g.acks, a)
		g.mu.Unlock()
	}
}

func (g *gateway) publish(t *testing.T, topic string, payload []byte) {
	t.Helper()
	if tok := g.client.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

func (g *gateway) ackList() []telemetry.Ack {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]telemetry.Ack(nil), g.acks...)
}

func encode(t *testing.T, gw string, first uint64, n int) []byte {
	t.Helper()
	b := &telemetry.Batch{Gateway: gw, Site: "north", Stream: "s1", FirstSeq: first}
	for i := 0; i < n; i++ {
		b.Readings = append(b.Readings, telemetry.Reading{Device: "soil-1", Metric: "soil_moisture", Unit: "%",
			Value: float64(first) + float64(i), Time: t0.Add(time.Duration(first+uint64(i)) * time.Second)})
	}
	data, err := telemetry.Encode(b, telemetry.CodecRowsDeflate)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

type rig struct {
	in    *Ingestor
	store store.Store
	reg   *registry.Registry
	stop  func()
}

// startIngest runs an ingestor on url; login, if set, says as whom.
func startIngest(t *testing.T, url string, st store.Store, login ...func(*Options)) *rig {
	t.Helper()
	reg := registry.New()
	o := Options{BrokerURL: url, Store: st, Registry: reg, Log: slog.New(slog.DiscardHandler),
		Metrics: NewMetrics(prometheus.NewRegistry())}
	for _, f := range login {
		f(&o)
	}
	in := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	r := &rig{in: in, store: st, reg: reg, stop: sync.OnceFunc(func() { cancel(); <-done })}
	t.Cleanup(r.stop)
	testenv.Eventually(t, "ingestor subscribed", wait, in.Connected)
	return r
}

func openSQLite(t *testing.T) store.Store {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testBroker is where the test's gateways connect (as their id), and how
// the ingestor logs in.
type testBroker struct {
	url    string
	ingest func(*Options)
}

// brokers are an anonymous Mosquitto and the embedded broker with its
// defaults (loopback, no password file: names taken at their word, the
// topic ACL in force, the ingestor on its internal identity).
func brokers(t *testing.T) map[string]func(t *testing.T) testBroker {
	return map[string]func(t *testing.T) testBroker{
		"mosquitto": func(t *testing.T) testBroker {
			return testBroker{url: testenv.StartMosquitto(t).URL, ingest: func(*Options) {}}
		},
		"embedded": func(t *testing.T) testBroker {
			b, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return testBroker{url: b.URL(), ingest: func(o *Options) {
				o.BrokerURL, o.Username, o.Password = b.InternalURL(), b.Internal().Username, b.Internal().Password
			}}
		},
	}
}

// TestStoresAcksAndRefuses sends a good batch and every kind of bad input on
// both brokers: only the good one is stored and acknowledged, each bad one
// is counted under its reason.
func TestStoresAcksAndRefuses(t *testing.T) {
	for name, start := range brokers(t) {
		t.Run(name, func(t *testing.T) {
			b := start(t)
			r := startIngest(t, b.url, openSQLite(t), b.ingest)
			gw := newGateway(t, b.url, "gw1")
			m := r.in.m

			gw.publish(t, telemetry.UpTopic("gw1"), []byte("not a batch"))
			gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw2", 1, 3)) // claims to be gw2
			gw.publish(t, telemetry.StateTopic("gw1"), []byte(`{"state":"sleepy"}`))
			testenv.Eventually(t, "three refusals", wait, func() bool {
				return testutil.ToFloat64(m.rejected.WithLabelValues("malformed")) == 1 &&
					testutil.ToFloat64(m.rejected.WithLabelValues("gateway_mismatch")) == 1 &&
					testutil.ToFloat64(m.rejected.WithLabelValues("bad_state")) == 1
			})
			gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 1, 5))
			testenv.Eventually(t, "ack of the good batch", wait, func() bool { return len(gw.ackList()) == 1 })
			a := gw.ackList()[0]
			if a.Stream != "s1" || a.First != 1 || a.Last != 5 || a.Through != 5 {
				t.Fatalf("ack %+v", a)
			}
			got, err := r.store.Series(context.Background(), store.SeriesQuery{Gateway: "gw1", Device: "soil-1",
				Metric: "soil_moisture", From: t0, To: t0.Add(time.Hour)})
			if err != nil || len(got) != 5 {
				t.Fatalf("stored %d samples (%v), want 5", len(got), err)
			}
			for _, gw2 := range []string{"gw2"} {
				if _, ok := r.reg.Station(gw2); ok {
					t.Fatalf("the impostor batch reached the registry")
				}
			}
			st, ok := r.reg.Station("gw1")
			if !ok || len(st.Devices) != 1 || *st.Devices[0].Latest[0].Value != 5 {
				t.Fatalf("registry: %+v", st)
			}
			// Events travel in batches too: stored, then acked.
			eb := &telemetry.Batch{Gateway: "gw1", Site: "north", Stream: "s1", FirstSeq: 6, Committed: 5,
				Events: []telemetry.Event{{Device: "gate", Kind: telemetry.EventTag, Key: "982000000000001", Time: t0,
					Attrs: map[string]string{"state": "present"}, Values: map[string]float64{"count": 1}}}}
			data, err := telemetry.Encode(eb, telemetry.CodecRowsDeflate)
			if err != nil {
				t.Fatal(err)
			}
			gw.publish(t, telemetry.UpTopic("gw1"), data)
			testenv.Eventually(t, "ack of the events batch", wait, func() bool { return len(gw.ackList()) == 2 })
			if a := gw.ackList()[1]; a.First != 6 || a.Last != 6 || a.Through != 6 {
				t.Fatalf("events ack %+v", a)
			}
			es, err := r.store.Events(context.Background(), store.EventQuery{Gateway: "gw1", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
			if err != nil || len(es) != 1 || es[0].Key != "982000000000001" {
				t.Fatalf("stored events %+v, %v", es, err)
			}
			// A replay is stored again harmlessly and acked again.
			gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 1, 5))
			testenv.Eventually(t, "ack of the replay", wait, func() bool { return len(gw.ackList()) == 3 })
			got, _ = r.store.Series(context.Background(), store.SeriesQuery{Gateway: "gw1", Device: "soil-1",
				Metric: "soil_moisture", From: t0, To: t0.Add(time.Hour)})
			if len(got) != 5 {
				t.Fatalf("replay duplicated samples: %d", len(got))
			}
		})
	}
}

// TestNoAckWhenStoreFails points the ingestor at an InfluxDB URL where
// nothing listens: the write fails, so the batch must not be acknowledged.
func TestNoAckWhenStoreFails(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	dead, err := influx.Open(influx.Config{URL: fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), Bucket: "db/autogen",
		Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := startIngest(t, url, dead)
	gw := newGateway(t, url, "gw1")
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 1, 3))
	testenv.Eventually(t, "store error counted", wait, func() bool { return testutil.ToFloat64(r.in.m.storeErrors) == 1 })
	// Prove the ingestor is still working and would have acked by now.
	state, _ := telemetry.EncodeState(telemetry.State{State: telemetry.StateOnline})
	gw.publish(t, telemetry.StateTopic("gw1"), state)
	testenv.Eventually(t, "state after the failure", wait, func() bool {
		return testutil.ToFloat64(r.in.m.states.WithLabelValues("online")) == 1
	})
	if n := len(gw.ackList()); n != 0 {
		t.Fatalf("%d acks for a batch the store refused", n)
	}
}

// TestSharedSubscriptionSplitsLoad runs two ingestors on one Mosquitto: each
// batch is stored by exactly one of them.
func TestSharedSubscriptionSplitsLoad(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	a := startIngest(t, url, openSQLite(t))
	b := startIngest(t, url, openSQLite(t))
	gw := newGateway(t, url, "gw1")
	const n = 40
	for i := 0; i < n; i++ {
		gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", uint64(1+i*2), 2))
	}
	testenv.Eventually(t, "all batches acked", wait, func() bool { return len(gw.ackList()) == n })
	na, nb := testutil.ToFloat64(a.in.m.batches), testutil.ToFloat64(b.in.m.batches)
	if na+nb != n || na == 0 || nb == 0 {
		t.Fatalf("replica a stored %v, b %v; want %d split between both", na, nb, n)
	}
}

// TestReplaysAreRecognised: a batch sent again — at once, or to a new
// ingestor after a restart, on the same store — is acknowledged again but
// neither written nor passed on twice; a batch that overlaps stored ones
// only in part is written.
func TestReplaysAreRecognised(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	st := openSQLite(t)
	gw := newGateway(t, url, "gw1")
	first := startIngest(t, url, st)
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 1, 10))
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 1, 10))
	testenv.Eventually(t, "two acks", wait, func() bool { return len(gw.ackList()) == 2 })
	if b, d := testutil.ToFloat64(first.in.m.batches), testutil.ToFloat64(first.in.m.duplicates); b != 1 || d != 1 {
		t.Fatalf("stored %v batches and recognised %v replays; want 1 and 1", b, d)
	}
	first.stop()

	second := startIngest(t, url, st)                                // a restart: its memory is empty
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 3, 4))  // inside 1…10
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 8, 5))  // 8…12: partly new
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 13, 1)) // new
	testenv.Eventually(t, "five acks", wait, func() bool { return len(gw.ackList()) == 5 })
	if b, d := testutil.ToFloat64(second.in.m.batches), testutil.ToFloat64(second.in.m.duplicates); b != 2 || d != 1 {
		t.Fatalf("after the restart: stored %v batches, recognised %v replays; want 2 and 1", b, d)
	}
	if last := gw.ackList()[4]; last.Through != 13 {
		t.Fatalf("last ack %+v; want through 13", last)
	}
}

// TestCompactContextsAndResync: compact batches are stored, their context
// kept in the store for the next ingestor; a cloud that has lost the
// context asks the gateway to resync instead of acknowledging.
func TestCompactContextsAndResync(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	st := openSQLite(t)
	gw := newGateway(t, url, "gw1")
	enc := telemetry.NewCompactEncoder("gw1", "north", "s1")
	batch := func(first uint64) { sendCompact(t, gw, enc, first) }
	first := startIngest(t, url, st)
	batch(1) // defines the context
	batch(6) // refers to it
	first.stop()
	second := startIngest(t, url, st) // finds the context in the store
	batch(11)
	if n := testutil.ToFloat64(second.in.m.batches); n != 1 {
		t.Fatalf("the second ingestor stored %v batches, want 1", n)
	}
	second.stop()
	lost := startIngest(t, url, openSQLite(t)) // a store without the context
	batch(16)
	a := gw.ackList()[len(gw.ackList())-1]
	if !a.Resync || a.Through != 0 || a.First != 16 || a.Last != 20 || a.Context == 0 {
		t.Fatalf("answer %+v; want a resync request for 16…20", a)
	}
	if n := testutil.ToFloat64(lost.in.m.resyncs); n != 1 {
		t.Fatalf("resyncs counted %v", n)
	}
	enc.Reset()
	batch(16) // defined again from scratch
	if a := gw.ackList()[len(gw.ackList())-1]; a.Resync || a.Last != 20 {
		t.Fatalf("after the reset %+v", a)
	}
}

// sendCompact encodes five readings of gw1's stream s1 from sequence first
// with enc, publishes them and waits for the cloud's answer; an answer that
// is not a refusal confirms what the batch defined, as a gateway does.
func sendCompact(t *testing.T, gw *gateway, enc *telemetry.CompactEncoder, first uint64) telemetry.Ack {
	t.Helper()
	b := &telemetry.Batch{Gateway: "gw1", Site: "north", Stream: "s1", FirstSeq: first}
	for i := range 5 {
		b.Readings = append(b.Readings, telemetry.Reading{Device: "soil-1", Metric: "soil_moisture", Unit: "%",
			Value: 30 + float64(i)/10, Time: t0.Add(time.Duration(first+uint64(i)) * time.Minute)})
	}
	data, sent, err := enc.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	before := len(gw.ackList())
	gw.publish(t, telemetry.UpTopic("gw1"), data)
	testenv.Eventually(t, "an answer", wait, func() bool { return len(gw.ackList()) > before })
	a := gw.ackList()[before]
	if !a.Refused() {
		enc.Confirm(sent)
	}
	return a
}

// wait bounds how long a test waits for an event.
const wait = 30 * time.Second

// TestHealth: the intake says it cannot hear the field when the store
// fails, and when it hangs with a batch in hand; it is healthy when
// batches are stored.
func TestHealth(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	fast := func(o *Options) { o.StallAfter = 300 * time.Millisecond }
	cases := []struct {
		name  string
		store func(t *testing.T) store.Store
		want  string
	}{
		{"stored", openSQLite, ""},
		{"store refuses connections", func(t *testing.T) store.Store {
			s, err := influx.Open(influx.Config{URL: fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), Bucket: "db/autogen",
				Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, "store writes fail"},
		{"store hangs", func(t *testing.T) store.Store {
			ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					t.Cleanup(func() { c.Close() })
				}
			}()
			s, err := influx.Open(influx.Config{URL: "http://" + ln.Addr().String(), Bucket: "db/autogen", Timeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, "in hand"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := startIngest(t, url, c.store(t), fast)
			if h := r.in.Health(); h != "" {
				t.Fatalf("health before any batch: %q", h)
			}
			gw := newGateway(t, url, "gw-"+strings.ReplaceAll(c.name, " ", "-"))
			for i := 0; i < 3; i++ {
				gw.publish(t, telemetry.UpTopic(gw.id), encode(t, gw.id, uint64(1+3*i), 3))
			}
			if c.want == "" {
				// A worker publishes a batch's ack before it puts the batch
				// out of hand: wait for that too, or a write slower than
				// StallAfter on a loaded machine reads as a stall.
				testenv.Eventually(t, "batches acked and out of hand", wait, func() bool {
					if len(gw.ackList()) != 3 {
						return false
					}
					for i := range r.in.busy {
						if r.in.busy[i].Load() != 0 {
							return false
						}
					}
					return true
				})
				if h := r.in.Health(); h != "" {
					t.Fatalf("health %q with the store working", h)
				}
				return
			}
			testenv.Eventually(t, "health says "+c.want, wait, func() bool { return strings.Contains(r.in.Health(), c.want) })
		})
	}
}

// TestTimelinessOncePerReading: every stored reading keeps one delay, from
// its acquisition to the moment its batch was stored; a replay the commit
// record covers changes none, and a batch that is partly new gives each
// reading one delay still.
func TestTimelinessOncePerReading(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	st := openSQLite(t)
	gw := newGateway(t, url, "gw1")
	startIngest(t, url, st)
	stats := func() store.PeriodStats {
		t.Helper()
		got, err := st.Stats(context.Background(), store.StatsQuery{Gateway: "gw1", Device: "soil-1", Metric: "soil_moisture",
			Bounds: []time.Time{t0, t0.Add(time.Hour)}})
		if err != nil || len(got) != 1 {
			t.Fatalf("stats: %+v, %v", got, err)
		}
		return got[0].Periods[0]
	}
	sent := time.Now()
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 1, 10))
	testenv.Eventually(t, "the first ack", wait, func() bool { return len(gw.ackList()) == 1 })
	acked := time.Now()
	p := stats()
	if p.Received != 10 || p.Delays != 10 {
		t.Fatalf("after one batch of 10: received %d, delays %d", p.Received, p.Delays)
	}
	// Readings 1 … 10 were taken at t0+1s … t0+10s and stored between
	// sent and acked: the largest delay is reading 1's.
	lo, hi := sent.Sub(t0.Add(time.Second)).Seconds(), acked.Sub(t0.Add(time.Second)).Seconds()
	if *p.DelayMax < lo || *p.DelayMax > hi {
		t.Fatalf("largest delay %v s, want within [%v, %v] (stored between send and ack)", *p.DelayMax, lo, hi)
	}
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 1, 10)) // a replay
	testenv.Eventually(t, "the replay's ack", wait, func() bool { return len(gw.ackList()) == 2 })
	if again := stats(); again.Delays != 10 || *again.DelayMean != *p.DelayMean || *again.DelayMax != *p.DelayMax {
		t.Fatalf("a replay changed the delays: %d, mean %v max %v; before %d, mean %v max %v", again.Delays,
			*again.DelayMean, *again.DelayMax, p.Delays, *p.DelayMean, *p.DelayMax)
	}
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 8, 5)) // 8 … 12: partly new
	testenv.Eventually(t, "the third ack", wait, func() bool { return len(gw.ackList()) == 3 })
	if p := stats(); p.Received != 12 || p.Delays != 12 {
		t.Fatalf("after 8 … 12: received %d, delays %d; want one each for readings 1 … 12", p.Received, p.Delays)
	}
}
