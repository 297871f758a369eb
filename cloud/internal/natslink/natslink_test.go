package natslink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldwatch/fieldwatch/cloud/internal/ingest"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

func TestSubjectTopic(t *testing.T) {
	for _, c := range []struct{ topic, subject string }{
		{"fieldwatch/v1/farm-1/up", "fieldwatch.v1.farm-1.up"},
		{"fieldwatch/v1/farm.north/ack", "fieldwatch.v1.farm//north.ack"},
		{"fieldwatch/v1/a.b.c/state", "fieldwatch.v1.a//b//c.state"},
	} {
		if got := Subject(c.topic); got != c.subject {
			t.Errorf("Subject(%q) = %q, want %q", c.topic, got, c.subject)
		}
		if got := Topic(c.subject); got != c.topic {
			t.Errorf("Topic(%q) = %q, want %q", c.subject, got, c.topic)
		}
	}
	if got := Topic("fw.p.3.farm//north"); got != "fieldwatch/v1/farm.north/up" {
		t.Errorf("a partitioned subject maps to %q", got)
	}
}

// FuzzTopic: any subject maps to a topic the intake parses or refuses by
// name, and a gateway's topics survive the round trip through subjects.
func FuzzTopic(f *testing.F) {
	for _, s := range []string{"fieldwatch.v1.gw.up", "fw.p.1.gw", "fw.p.1", "fieldwatch.v1.a//b.state", "..", "//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		topic := Topic(subject)
		if _, _, err := telemetry.ParseTopic(topic); err != nil {
			return
		}
		if Topic(Subject(topic)) != topic {
			t.Fatalf("%q does not survive the round trip", topic)
		}
	})
}

// received records what a replica was handed.
type received struct {
	mu      sync.Mutex
	byGW    map[string][]int // gateway → the numbers of its messages, in the order handed over
	sum     int
	replies []string // the topics and payloads of the command replies handed over
}

func (r *received) reply(topic string, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replies = append(r.replies, topic+" "+string(payload))
}

func (r *received) repliesSeen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.replies)
}

func (r *received) add(gw string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byGW[gw] = append(r.byGW[gw], n)
	r.sum++
}

func (r *received) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sum
}

// replica runs a Link whose deliver finishes every message at once; stop
// stops it and waits.
func replica(t *testing.T, urls []string, name string, o func(*Options)) (r *received, l *Link, stop func()) {
	opts := Options{URLs: urls, Name: name, Partitions: 8, Replicas: 3, PinnedTTL: 3 * time.Second,
		AckWait: 10 * time.Second, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if o != nil {
		o(&opts)
	}
	l = New(opts)
	r = &received{byGW: map[string][]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, func(m ingest.Message) {
			gw, kind, err := telemetry.ParseTopic(m.Topic())
			if err == nil && kind == "reply" {
				r.reply(m.Topic(), m.Payload())
				return
			}
			if err != nil || kind != "up" {
				t.Errorf("handed %q: %v", m.Topic(), err)
				return
			}
			n, _ := strconv.Atoi(string(m.Payload()))
			if ok, since := l.Serves(gw); !ok || since.IsZero() {
				t.Errorf("%s handed %s, whose partition %d it says it does not serve", name, gw, Partition(gw, 8))
			}
			if jm, ok := m.(*jsMsg); ok && !strings.HasPrefix(jm.m.Subject(), fmt.Sprintf("fw.p.%d.", Partition(gw, 8))) {
				t.Errorf("%s: subject %s, but Partition says %d", gw, jm.m.Subject(), Partition(gw, 8))
			}
			r.add(gw, n)
			m.(ingest.Finisher).Finish(true)
		})
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	testenv.Eventually(t, name+" set up", 60*time.Second, l.Connected)
	return r, l, stop
}

// TestPinnedPartitions: with two replicas on a three-node cluster, the
// partitions are shared out, each pulled by one replica; each gateway's
// messages go to one replica, in order; when a replica stops, the other
// takes its partitions and nothing is lost or handed over twice.
func TestPinnedPartitions(t *testing.T) {
	cl := testenv.StartNATS(t, 3)
	a, la, stopA := replica(t, cl.URLs(), "replica-a", nil)
	testenv.Eventually(t, "a alone pulls every partition", 30*time.Second, func() bool { return la.Owned() == 8 })
	b, lb, _ := replica(t, cl.URLs(), "replica-b", nil)
	members := []string{la.ID(), lb.ID()}
	wantA := 0
	for k := 0; k < 8; k++ {
		if Owner(members, k) == la.ID() {
			wantA++
		}
	}
	testenv.Eventually(t, "the partitions shared out", 30*time.Second, func() bool {
		return la.Owned() == wantA && lb.Owned() == 8-wantA
	})
	t.Logf("partitions: a %d, b %d", wantA, 8-wantA)

	const gateways, each = 12, 50
	var clients []mqtt.Client
	for g := 0; g < gateways; g++ {
		url := cl.MQTTURLs()[g%3]
		clients = append(clients, testenv.MQTTConnect(t, mqtt.NewClientOptions().AddBroker(url).
			SetClientID(fmt.Sprintf("gw%d", g)).SetCleanSession(false)))
	}
	publish := func(from, to int) {
		for n := from; n < to; n++ {
			for g, c := range clients {
				tok := c.Publish(telemetry.UpTopic(fmt.Sprintf("gw.%d", g)), 1, false, strconv.Itoa(n))
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					t.Fatalf("publish: %v", tok.Error())
				}
			}
		}
	}
	publish(0, each)
	testenv.Eventually(t, "first half handed over", 60*time.Second, func() bool { return a.total()+b.total() >= gateways*each })

	check := func(stage string, want int) map[string]string {
		owner := map[string]string{}
		for name, r := range map[string]*received{"a": a, "b": b} {
			r.mu.Lock()
			for gw, ns := range r.byGW {
				if o, dup := owner[gw]; dup && stage == "before" {
					t.Errorf("%s: gateway %s handed to both %s and %s", stage, gw, o, name)
				}
				owner[gw] = name
				for i := 1; i < len(ns); i++ {
					if ns[i] <= ns[i-1] {
						t.Errorf("%s: %s handed %s's %d after %d", stage, name, gw, ns[i], ns[i-1])
					}
				}
			}
			r.mu.Unlock()
		}
		return owner
	}
	owners := check("before", each)
	if len(owners) != gateways {
		t.Fatalf("%d gateways handed over, want %d", len(owners), gateways)
	}

	// Replica a stops; its partitions go to b after pinned_ttl.
	stopA()
	before := a.total()
	publish(each, 2*each)
	testenv.Eventually(t, "second half handed over to b", 90*time.Second, func() bool {
		return b.total()+before >= 2*gateways*each
	})
	if a.total() != before {
		t.Fatalf("the stopped replica was handed %d more", a.total()-before)
	}
	if lb.Owned() != 8 {
		t.Fatalf("b pulls %d partitions after a stopped, want 8", lb.Owned())
	}
	// Every gateway's numbers 0..2*each-1 handed over exactly once in all.
	seen := map[string]map[int]int{}
	for _, r := range []*received{a, b} {
		r.mu.Lock()
		for gw, ns := range r.byGW {
			if seen[gw] == nil {
				seen[gw] = map[int]int{}
			}
			for _, n := range ns {
				seen[gw][n]++
			}
		}
		r.mu.Unlock()
	}
	for g := 0; g < gateways; g++ {
		gw := fmt.Sprintf("gw.%d", g)
		for n := 0; n < 2*each; n++ {
			if seen[gw][n] != 1 {
				t.Fatalf("%s's message %d handed over %d times", gw, n, seen[gw][n])
			}
		}
	}
}

// TestOwnerSpreads: partitions spread over members, and a member leaving
// moves only its own partitions.
func TestOwnerSpreads(t *testing.T) {
	three := []string{"cloud-a-1f2e3d4c", "cloud-b-1f2e3d4c", "cloud-c-1f2e3d4c"}
	count := map[string]int{}
	for k := 0; k < 64; k++ {
		count[Owner(three, k)]++
	}
	for _, m := range three {
		if count[m] < 10 {
			t.Errorf("%s owns %d of 64 partitions: %v", m, count[m], count)
		}
	}
	two := three[:2]
	for k := 0; k < 64; k++ {
		if o := Owner(three, k); o != three[2] && Owner(two, k) != o {
			t.Errorf("partition %d moved from %s although its owner stayed", k, o)
		}
	}
	if Owner(nil, 3) != "" {
		t.Error("no members, yet an owner")
	}
}

// shippedUsers is the authorization block deploy/nats/nats.conf ships
// (docs/scaling.md), with gateways gw-a and gw-b: the cloud may do
// anything; the replicas' MQTT client (fleet) may publish only desired
// configs and release manifests; each gateway may publish only its own
// batches, state and command replies and read only its own acks, desired
// configuration, commands and release manifest. Passwords: "<user>-secret".
func shippedUsers(t *testing.T) string {
	return testenv.ShippedNATSUsers(t, "../../../deploy/nats/nats.conf", "gw-a", "gw-b")
}

// TestGatewayPermissions: with the documented users, a gateway's batches
// reach the cloud and its acks reach it; a gateway cannot publish as
// another, nor read another's acks or batches, nor reach the stream, and a
// wrong password is refused.
func TestGatewayPermissions(t *testing.T) {
	cl := testenv.StartNATSWith(t, 1, shippedUsers(t))
	r, l, _ := replica(t, cl.URLs(), "replica", func(o *Options) {
		o.Username, o.Password, o.Replicas = "cloud", "cloud-secret", 1
		o.MQTT = MQTTOptions{URLs: cl.MQTTURLs(), Username: "fleet", Password: "fleet-secret"}
	})
	connect := func(user, pass string) (mqtt.Client, error) {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(cl.MQTTURLs()[0]).SetClientID(user).
			SetUsername(user).SetPassword(pass).SetProtocolVersion(4).SetCleanSession(true))
		tok := c.Connect()
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return nil, fmt.Errorf("connect %s: %v", user, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(100) })
		return c, nil
	}
	if _, err := connect("gw-a", "wrong"); err == nil {
		t.Fatal("a wrong password was let in")
	}
	a, err := connect("gw-a", "gw-a-secret")
	if err != nil {
		t.Fatal(err)
	}
	subscribe := func(topic string) byte {
		tok := a.Subscribe(topic, 0, func(mqtt.Client, mqtt.Message) {})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", topic, tok.Error())
		}
		return tok.(*mqtt.SubscribeToken).Result()[topic]
	}
	for _, topic := range []string{"fieldwatch/v1/gw-b/ack", "fieldwatch/v1/+/up", "fieldwatch/v1/gw-b/up", "fw/p/#",
		"fieldwatch/v1/gw-b/config", "fieldwatch/v1/+/config", "fieldwatch/v1/gw-b/cmd", "fieldwatch/v1/+/cmd",
		"fieldwatch/v1/gw-b/reply", "fieldwatch/v1/+/reply", "fieldwatch/v1/gw-b/release", "fieldwatch/v1/+/release"} {
		if code := subscribe(topic); code != 0x80 {
			t.Errorf("gw-a may subscribe to %s (SUBACK %#x)", topic, code)
		}
	}
	if code := subscribe("fieldwatch/v1/gw-a/ack"); code == 0x80 {
		t.Fatal("gw-a may not subscribe to its own acks")
	}
	if code := subscribe("fieldwatch/v1/gw-a/config"); code == 0x80 {
		t.Fatal("gw-a may not subscribe to its own config")
	}
	if code := subscribe("fieldwatch/v1/gw-a/cmd"); code == 0x80 {
		t.Fatal("gw-a may not subscribe to its own commands")
	}
	if code := subscribe("fieldwatch/v1/gw-a/release"); code == 0x80 {
		t.Fatal("gw-a may not subscribe to its own release manifest")
	}
	// gw-a publishes as gw-b, then as itself: only its own reaches the cloud.
	for _, topic := range []string{telemetry.UpTopic("gw-b"), telemetry.UpTopic("gw-a")} {
		a.Publish(topic, 1, false, "1").WaitTimeout(10 * time.Second)
	}
	testenv.Eventually(t, "gw-a's own batch handed over", 30*time.Second, func() bool { return r.total() >= 1 })
	// The stream stored one message in all: gw-b's was refused at the door.
	nc, err := nats.Connect(cl.URLs()[0], nats.UserInfo("cloud", "cloud-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if last := s.CachedInfo().State.LastSeq; last != 1 {
		t.Fatalf("the stream stored %d messages; want gw-a's one", last)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.byGW["gw-b"]) != 0 || len(r.byGW["gw-a"]) != 1 {
		t.Fatalf("handed over %v; want gw-a's one batch only", r.byGW)
	}
	if !l.Connected() {
		t.Fatal("the cloud user lost its connection")
	}
}

// TestFleetPermissions: with the documented users, the replicas' MQTT
// client keeps a desired config and a release manifest retained for a
// gateway, which receives them when it subscribes later; a gateway cannot
// replace its own retained config; a command published by the cloud on
// core NATS reaches the gateway's MQTT subscription, and its reply reaches
// the replica's core subscription, while a reply forged for another
// gateway does not.
func TestFleetPermissions(t *testing.T) {
	cl := testenv.StartNATSWith(t, 1, shippedUsers(t))
	r, l, _ := replica(t, cl.URLs(), "replica", func(o *Options) {
		o.Username, o.Password, o.Replicas = "cloud", "cloud-secret", 1
		o.MQTT = MQTTOptions{URLs: cl.MQTTURLs(), Username: "fleet", Password: "fleet-secret"}
	})
	testenv.Eventually(t, "the fleet client connected", 30*time.Second, l.fleetUp)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for topic, payload := range map[string]string{telemetry.ConfigTopic("gw-a"): "config-a-1",
		telemetry.ReleaseTopic("gw-a"): "release-a-1"} {
		if err := l.PublishRetained(ctx, topic, []byte(payload)); err != nil {
			t.Fatalf("PublishRetained %s: %v", topic, err)
		}
	}
	connect := func(user, pass string, on mqtt.MessageHandler) mqtt.Client {
		return testenv.MQTTConnect(t, mqtt.NewClientOptions().AddBroker(cl.MQTTURLs()[0]).SetClientID(user).
			SetUsername(user).SetPassword(pass).SetProtocolVersion(4).SetCleanSession(true).SetDefaultPublishHandler(on))
	}
	type msg struct {
		payload  string
		retained bool
	}
	got := make(chan msg, 16)
	a := connect("gw-a", "gw-a-secret", func(_ mqtt.Client, m mqtt.Message) { got <- msg{string(m.Payload()), m.Retained()} })
	// A gateway's forged retained config is refused at the door (the
	// PUBACK comes, the message goes nowhere).
	a.Publish(telemetry.ConfigTopic("gw-a"), 1, true, "forged").WaitTimeout(10 * time.Second)
	for _, tc := range []struct{ topic, want string }{
		{telemetry.ConfigTopic("gw-a"), "config-a-1"},
		{telemetry.ReleaseTopic("gw-a"), "release-a-1"},
	} {
		tok := a.Subscribe(tc.topic, 1, nil)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil || tok.(*mqtt.SubscribeToken).Result()[tc.topic] == 0x80 {
			t.Fatalf("subscribe %s: %v", tc.topic, tok.Error())
		}
		select {
		case m := <-got:
			if m.payload != tc.want || !m.retained {
				t.Fatalf("%s: received %q (retained %v), want %q retained", tc.topic, m.payload, m.retained, tc.want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: nothing retained received", tc.topic)
		}
	}

	// A command on core NATS reaches gw-a's QoS 1 subscription; gw-a's
	// reply, and not gw-b's forged by gw-a, reaches the replica.
	cmds := make(chan string, 4)
	if tok := a.Subscribe(telemetry.CmdTopic("gw-a"), 1, func(_ mqtt.Client, m mqtt.Message) {
		cmds <- string(m.Payload())
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if err := l.Publish(telemetry.CmdTopic("gw-a"), []byte("cmd-1")); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-cmds:
		if c != "cmd-1" {
			t.Fatalf("gw-a received command %q", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the command did not reach gw-a")
	}
	for _, topic := range []string{telemetry.ReplyTopic("gw-b"), telemetry.ReplyTopic("gw-a")} {
		if tok := a.Publish(topic, 1, false, "reply-1"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	testenv.Eventually(t, "gw-a's reply handed over", 30*time.Second, func() bool { return len(r.repliesSeen()) > 0 })
	if want := []string{telemetry.ReplyTopic("gw-a") + " reply-1"}; !slices.Equal(r.repliesSeen(), want) {
		t.Fatalf("replies handed over %q, want %q", r.repliesSeen(), want)
	}
}

// TestPublishRetainedRefuses: without nats.mqtt.urls a retained message is
// refused as ingest.ErrNoRetained (the API's 501); with them but not
// connected, as a passing failure (503).
func TestPublishRetainedRefuses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mqtt       MQTTOptions
		noRetained bool
	}{
		{"no MQTT listeners", MQTTOptions{}, true},
		{"not connected yet", MQTTOptions{URLs: []string{"tcp://127.0.0.1:1"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(Options{URLs: []string{"nats://127.0.0.1:1"}, MQTT: tc.mqtt})
			err := l.PublishRetained(context.Background(), telemetry.ConfigTopic("gw-a"), []byte("x"))
			if err == nil || errors.Is(err, ingest.ErrNoRetained) != tc.noRetained {
				t.Fatalf("PublishRetained: %v; want an error, ErrNoRetained %v", err, tc.noRetained)
			}
		})
	}
}
