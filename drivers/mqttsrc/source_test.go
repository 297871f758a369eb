package mqttsrc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// soilProfile loads the example ChirpStack profile.
func soilProfile(t testing.TB) testProfile {
	t.Helper()
	const file = soilProfileFile
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var p testProfile
	if err := yamlconf.Decode(file, data, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// running is a Source started by start.
type running struct {
	src      *Source
	out      chan stream.Output
	done     chan error
	stop     context.CancelFunc
	returned bool
	err      error
}

// wait returns what Run returned, waiting up to d; ok is false on timeout.
func (r *running) wait(d time.Duration) (err error, ok bool) {
	if r.returned {
		return r.err, true
	}
	select {
	case r.err = <-r.done:
		r.returned = true
		return r.err, true
	case <-time.After(d):
		return nil, false
	}
}

// start runs a source on cfg whose sink passes outputs to r.out (or calls
// sink first when given).
func start(t *testing.T, cfg Config, sink func(stream.Output) error) *running {
	t.Helper()
	src, err := NewSource(cfg, func() telemetry.ClockQuality { return telemetry.ClockNTP })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{src: src, out: make(chan stream.Output, 100), done: make(chan error, 1), stop: cancel}
	go func() {
		r.done <- src.Run(ctx, func(o stream.Output) error {
			if sink != nil {
				if err := sink(o); err != nil {
					return err
				}
			}
			r.out <- o
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if _, ok := r.wait(10 * time.Second); !ok {
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// next returns the next output of r.
func (r *running) next(t *testing.T) stream.Output {
	t.Helper()
	select {
	case o := <-r.out:
		return o
	case <-time.After(20 * time.Second):
		if err, ok := r.wait(0); ok {
			t.Fatalf("Run returned early: %v", err)
		}
		t.Fatalf("no readings; stats %+v", r.src.Stats())
	}
	return stream.Output{}
}

func publish(t *testing.T, m *testenv.Mosquitto, id string, qos byte, msgs ...[2]string) {
	t.Helper()
	c := testenv.MQTTClient(t, m.URL, id)
	for _, msg := range msgs {
		if tok := c.Publish(msg[0], qos, false, msg[1]); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", msg[0], tok.Error())
		}
	}
}

// TestSourceChirpStack publishes ChirpStack uplinks to a real Mosquitto,
// restarts it, and checks the source resubscribes and keeps mapping.
func TestSourceChirpStack(t *testing.T) {
	m := testenv.StartMosquitto(t)
	p := soilProfile(t)
	cfg := Config{
		Brokers: []string{m.URL}, ClientID: "fieldwatch-test-chirpstack", PersistentSession: true,
		Topic: "application/+/device/+/event/up", QoS: 1, ReconnectMax: 500 * time.Millisecond,
		Mapping: *p.MQTT,
	}
	r := start(t, cfg, nil)
	waitFor(t, "connection", r.src.Connected)

	var msgs [][2]string
	for _, tc := range p.Tests {
		msgs = append(msgs, [2]string{tc.Topic, tc.Input})
	}
	// Not an uplink of this profile's port, and not JSON: both skipped.
	msgs = append(msgs, [2]string{"application/x/device/0101010101010101/event/up", readFile(t, "chirpstack/docs-up.json")})
	msgs = append(msgs, [2]string{"application/x/device/0101010101010101/event/up", "\x00\x01 not json"})
	publish(t, m, "publisher-1", 1, msgs...)
	for _, tc := range p.Tests {
		o := r.next(t)
		if len(o.Readings) != len(tc.Expect) {
			t.Fatalf("%s: %d readings %+v; want %d", tc.Name, len(o.Readings), o.Readings, len(tc.Expect))
		}
		for _, rd := range o.Readings {
			if rd.Device != "a84041000181c0e1" || rd.Clock != telemetry.ClockNTP || !near(rd.Value, tc.Expect[rd.Metric]) {
				t.Errorf("%s: reading %+v; want device a84041000181c0e1, ntp, %v", tc.Name, rd, tc.Expect[rd.Metric])
			}
		}
	}
	waitFor(t, "skipped messages to be counted", func() bool {
		st := r.src.Stats()
		return st.Received == 5 && st.Filtered == 1 && st.Errors[ErrInvalidJSON] == 1
	})

	m.Stop()
	waitFor(t, "the source to notice the broker is gone", func() bool { return !r.src.Connected() })
	m.Start(t)
	waitFor(t, "reconnection and resubscription", func() bool { return r.src.Connected() && r.src.Stats().Connects >= 2 })
	publish(t, m, "publisher-2", 1, msgs[0])
	if o := r.next(t); len(o.Readings) != 6 || o.Readings[0].Metric != "soil_moisture" {
		t.Fatalf("after restart: %+v", o)
	}
	st := r.src.Stats()
	if st.Lost < 1 || st.Frames != 4 || st.Received != 6 {
		t.Errorf("stats after restart = %+v; want a lost connection, 4 frames, 6 messages", st)
	}

	r.stop()
	if err, ok := r.wait(10 * time.Second); !ok || err != nil {
		t.Fatalf("Run after cancel = %v (returned %v); want nil", err, ok)
	}
	if r.src.Connected() {
		t.Error("still connected after Run returned")
	}
}

// TestSourceBackpressure blocks the sink and checks the source stops taking
// messages from the broker, without a goroutine per message, then delivers
// all of them in order.
func TestSourceBackpressure(t *testing.T) {
	m := testenv.StartMosquitto(t)
	gate := make(chan struct{})
	cfg := Config{
		Brokers: []string{m.URL}, ClientID: "fieldwatch-test-slow", Topic: "nodes/+/up", QoS: 1, Queue: 2,
		Mapping: Mapping{Device: "topic:1", Fields: []Field{{Path: "n", Metric: "n"}}},
	}
	r := start(t, cfg, func(stream.Output) error { <-gate; return nil })
	waitFor(t, "connection", r.src.Connected)

	const n = 40
	var msgs [][2]string
	for i := range n {
		msgs = append(msgs, [2]string{"nodes/node-1/up", fmt.Sprintf(`{"n":%d}`, i)})
	}
	pub := testenv.MQTTClient(t, m.URL, "publisher-slow")
	before := runtime.NumGoroutine()
	for _, msg := range msgs {
		if tok := pub.Publish(msg[0], 1, false, msg[1]); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	// One message is in the sink and Queue wait; the rest stay at the broker.
	// Wait until the queue is full (no fixed pause that a loaded machine
	// may not fill it in): then no more may have been taken.
	waitFor(t, "the queue to fill", func() bool { return r.src.Stats().Received >= uint64(cfg.Queue)+1 })
	if got := r.src.Stats().Received; got > uint64(cfg.Queue)+1 {
		t.Errorf("%d messages taken while the sink is blocked; want at most %d", got, cfg.Queue+1)
	}
	if g := runtime.NumGoroutine(); g > before+10 {
		t.Errorf("%d goroutines while blocked, %d before", g, before)
	}
	close(gate)
	for i := range n {
		o := r.next(t)
		if len(o.Readings) != 1 || o.Readings[0].Value != float64(i) || o.Readings[0].Device != "node-1" {
			t.Fatalf("message %d: %+v", i, o.Readings)
		}
	}
	if st := r.src.Stats(); st.Received != n || st.Frames != n {
		t.Errorf("stats = %+v; want %d received and mapped", st, n)
	}
}

// TestSourceSinkError checks that a failing sink stops Run with its error.
func TestSourceSinkError(t *testing.T) {
	m := testenv.StartMosquitto(t)
	boom := errors.New("buffer full")
	cfg := Config{
		Brokers: []string{m.URL}, Topic: "nodes/#", QoS: 1,
		Mapping: Mapping{Device: "const:node-1", Fields: []Field{{Path: "n", Metric: "n"}}},
	}
	r := start(t, cfg, func(stream.Output) error { return boom })
	waitFor(t, "connection", r.src.Connected)
	publish(t, m, "publisher-err", 1, [2]string{"nodes/a", `{"n":1}`})
	if err, ok := r.wait(20 * time.Second); !ok || !errors.Is(err, boom) {
		t.Fatalf("Run = %v (returned %v); want the sink's error", err, ok)
	}
	if r.src.Connected() {
		t.Error("still connected after Run returned")
	}
}

// TestSourceRefusedSubscription checks that a subscription the broker
// refuses (SUBACK 0x80) stops Run. Mosquitto 2.0 grants MQTT 3.1.1
// subscriptions its ACL denies (and then delivers nothing), so a minimal
// broker that refuses every subscription stands in for it.
func TestSourceRefusedSubscription(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go refusingBroker(ln)
	cfg := Config{
		Brokers: []string{"tcp://" + ln.Addr().String()}, Topic: "forbidden/#", QoS: 1,
		Mapping: Mapping{Device: "const:node-1", Fields: []Field{{Path: "n", Metric: "n"}}},
	}
	r := start(t, cfg, nil)
	if err, ok := r.wait(20 * time.Second); !ok || err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Run = %v (returned %v); want a refused subscription; stats %+v", err, ok, r.src.Stats())
	}
	if st := r.src.Stats(); st.Connects != 0 || !strings.Contains(st.LastError, "refused") {
		t.Errorf("stats = %+v; want no subscription made and the refusal as last error", st)
	}
}

// refusingBroker accepts MQTT connections and refuses every subscription.
func refusingBroker(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			for {
				p, err := packets.ReadPacket(c)
				if err != nil {
					return
				}
				var reply packets.ControlPacket
				switch p := p.(type) {
				case *packets.ConnectPacket:
					reply = packets.NewControlPacket(packets.Connack)
				case *packets.SubscribePacket:
					sa := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
					sa.MessageID, sa.ReturnCodes = p.MessageID, []byte{0x80}
					reply = sa
				case *packets.PingreqPacket:
					reply = packets.NewControlPacket(packets.Pingresp)
				case *packets.DisconnectPacket:
					return
				}
				if reply != nil && reply.Write(c) != nil {
					return
				}
			}
		}()
	}
}

// TestSourceCancelWhileConnecting cancels Run while no broker answers.
func TestSourceCancelWhileConnecting(t *testing.T) {
	url := fmt.Sprintf("tcp://127.0.0.1:%d", testenv.FreePort(t))
	cfg := Config{
		Brokers: []string{url}, Topic: "#", ReconnectMax: 200 * time.Millisecond,
		Mapping: Mapping{Device: "const:node-1", Fields: []Field{{Path: "n", Metric: "n"}}},
	}
	r := start(t, cfg, nil)
	waitFor(t, "a failed connection attempt", func() bool { return strings.Contains(r.src.Stats().LastError, "connect") })
	if r.src.Connected() {
		t.Error("connected to nothing")
	}
	r.stop()
	if err, ok := r.wait(5 * time.Second); !ok || err != nil {
		t.Fatalf("Run after cancel = %v (returned %v); want nil", err, ok)
	}
}

func TestSourceRunTwice(t *testing.T) {
	cfg := Config{
		Brokers: []string{fmt.Sprintf("tcp://127.0.0.1:%d", testenv.FreePort(t))}, Topic: "#",
		Mapping: Mapping{Device: "const:node-1", Fields: []Field{{Path: "n", Metric: "n"}}},
	}
	r := start(t, cfg, nil)
	waitFor(t, "Run to start", r.src.running.Load)
	if err := r.src.Run(context.Background(), nil); err == nil {
		t.Error("second Run while running: no error")
	}
}
