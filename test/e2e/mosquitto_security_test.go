package e2e

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// The tests here run Mosquitto with the shipped deploy/mosquitto config and
// ACL (startShippedMosquitto) and attack it with real credentials: gateways
// farm-a and farm-b, the cloud's fieldwatch-cloud and the alerts reader
// fieldwatch-alerts, all in one mosquitto_passwd file, and farm-b also with
// a client certificate. Each waits for an event, bounded; none sleeps.

// mqRig is the shipped Mosquitto with its users.
type mqRig struct {
	shippedMosquitto
	p     pki
	certB *testenv.Cert
}

func mqPassword(user string) string { return "Pw-" + user + "-e2e" }

func startMosquittoRig(t *testing.T) *mqRig {
	t.Helper()
	p := newPKI(t)
	passwords := filepath.Join(t.TempDir(), "fieldwatch.passwd")
	for _, u := range []string{"fieldwatch-cloud", "fieldwatch-alerts", "farm-a", "farm-b"} {
		testenv.MosquittoPasswd(t, passwords, u, mqPassword(u), "")
	}
	return &mqRig{shippedMosquitto: startShippedMosquitto(t, p, passwords), p: p, certB: p.ca.Client(t, "farm-b")}
}

// mqClient is a test's MQTT client: it records every message it receives
// and whether the broker dropped it.
type mqClient struct {
	mqtt.Client
	name string
	mu   sync.Mutex
	got  []mqtt.Message
	lost error
}

// connect logs user in on listener "plain" (the cloud's loopback one),
// "password" (TLS and a password) or "certs" (farm-b's client certificate;
// user is then ignored), with client id id, and fails the test if the
// broker refuses. No reconnection: a dropped connection stays dropped.
func (r *mqRig) connect(t *testing.T, listener, user, id string, clean bool) *mqClient {
	t.Helper()
	c := &mqClient{name: user + "@" + listener + " as " + id}
	o := mqtt.NewClientOptions().SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(20 * time.Second).SetKeepAlive(60 * time.Second).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			c.mu.Lock()
			c.got = append(c.got, m)
			c.mu.Unlock()
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			c.mu.Lock()
			c.lost = err
			c.mu.Unlock()
		})
	switch listener {
	case "plain":
		o.AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", r.plain)).SetUsername(user).SetPassword(mqPassword(user))
	case "password":
		o.AddBroker(fmt.Sprintf("ssl://127.0.0.1:%d", r.password)).SetUsername(user).SetPassword(mqPassword(user)).
			SetTLSConfig(&tls.Config{RootCAs: r.p.ca.Pool})
	case "certs":
		o.AddBroker(fmt.Sprintf("ssl://127.0.0.1:%d", r.certs)).
			SetTLSConfig(&tls.Config{RootCAs: r.p.ca.Pool, Certificates: []tls.Certificate{r.certB.TLS}})
	default:
		t.Fatalf("no listener %q", listener)
	}
	c.Client = mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("%s cannot connect: %v", c.name, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// subscribe subscribes with QoS 1 and returns whether the broker granted it.
func (c *mqClient) subscribe(t *testing.T, filter string) bool {
	t.Helper()
	tok := c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: subscribe %s: %v", c.name, filter, tok.Error())
	}
	for _, code := range tok.(*mqtt.SubscribeToken).Result() {
		if code == 0x80 {
			return false
		}
	}
	return true
}

// publish publishes with QoS 1 and waits for the broker's PUBACK.
func (c *mqClient) publish(t *testing.T, topic string, retained bool, payload []byte) {
	t.Helper()
	if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: publish on %s: %v", c.name, topic, tok.Error())
	}
}

// received counts the messages received on topic ("" for all).
func (c *mqClient) received(topic string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.got {
		if topic == "" || m.Topic() == topic {
			n++
		}
	}
	return n
}

// receivedAck reports whether an ack of first was received on topic.
func (c *mqClient) receivedAck(topic string, first uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.got {
		if a, err := telemetry.DecodeAck(m.Payload()); err == nil && m.Topic() == topic && a.First == first {
			return true
		}
	}
	return false
}

func (c *mqClient) dropped() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

// mqBatch is gateway gw's batch of one reading, sequence number seq.
func mqBatch(t *testing.T, gw string, seq uint64) []byte {
	t.Helper()
	b := &telemetry.Batch{Gateway: gw, Site: "north", Stream: "s1", FirstSeq: seq, Readings: []telemetry.Reading{{
		Device: "soil-1", Metric: "soil_moisture", Unit: "%", Value: float64(seq),
		Time: time.Now().Add(-time.Hour).Add(time.Duration(seq) * time.Second)}}}
	data, err := telemetry.Encode(b, telemetry.CodecRowsDeflate)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mqAck(t *testing.T, first uint64) []byte {
	t.Helper()
	a, err := telemetry.EncodeAck(telemetry.Ack{Stream: "s1", First: first, Last: first, Through: first})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestMosquittoSharedGroupHijack: three clients logged in with farm-b's
// credentials join the group $share/ingest/fieldwatch/v1/+/up (Mosquitto
// grants it: its acl_file is not consulted for SUBSCRIBE). The cloud
// binary, on its defaults, subscribes without a shared group, so the rogue
// group is a subscription of its own: every one of farm-a's 20 batches is
// stored and acknowledged, and the rogues receive none of them (the read
// ACL at delivery). With the old shared default the ingestor got about one
// in four.
func TestMosquittoSharedGroupHijack(t *testing.T) {
	r := startMosquittoRig(t)
	dir := t.TempDir()
	cloudHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cloudCfg := filepath.Join(dir, "cloud.yaml")
	os.WriteFile(cloudCfg, []byte(fmt.Sprintf("mqtt: {url: tcp://127.0.0.1:%d, username: fieldwatch-cloud, password: %s}\n",
		r.plain, mqPassword("fieldwatch-cloud"))), 0o600)
	start(t, "fieldwatch-cloud", "run", "-c", cloudCfg, "-http", cloudHTTP, "-data", filepath.Join(dir, "data"))
	waitHealthy(t, cloudHTTP) // healthy once subscribed

	// On the loopback listener client ids are kept, so all three stay in
	// the group at once: the worst case (on the gateways' listeners they
	// would all be "farm-b" and take turns).
	var rogues []*mqClient
	for i := range 3 {
		rogue := r.connect(t, "plain", "farm-b", fmt.Sprintf("fieldwatch-ingest-rogue-%d", i), true)
		if !rogue.subscribe(t, telemetry.SharedUpFilter) {
			t.Fatal("Mosquitto refused the rogue's shared subscription; the premise of this test changed")
		}
		rogues = append(rogues, rogue)
	}
	a := r.connect(t, "password", "farm-a", "fieldwatch-farm-a", true)
	if !a.subscribe(t, telemetry.AckTopic("farm-a")) {
		t.Fatal("farm-a may not read its acks")
	}
	const n = 20
	for i := range n {
		a.publish(t, telemetry.UpTopic("farm-a"), false, mqBatch(t, "farm-a", uint64(1+i)))
	}
	acked := func() map[uint64]bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		firsts := map[uint64]bool{}
		for _, m := range a.got {
			if ack, err := telemetry.DecodeAck(m.Payload()); err == nil {
				firsts[ack.First] = true
			}
		}
		return firsts
	}
	testenv.Eventually(t, fmt.Sprintf("all %d of farm-a's batches acknowledged", n), 60*time.Second, func() bool {
		return len(acked()) == n
	})
	for _, rogue := range rogues {
		if got := rogue.received(""); got != 0 {
			t.Errorf("%s received %d messages", rogue.name, got)
		}
		if err := rogue.dropped(); err != nil {
			t.Errorf("%s was disconnected (%v): it was not in the group throughout", rogue.name, err)
		}
	}
}

// TestMosquittoClientIDTakeover: farm-b logs in with farm-a's client id,
// once with its password and once with its certificate. It gets in, but on
// the gateways' listeners its id becomes its user name
// (use_username_as_clientid): farm-a is not disconnected, and still
// receives an ack published after farm-b's CONNACK (Mosquitto drops the
// older client before it answers the newer).
func TestMosquittoClientIDTakeover(t *testing.T) {
	r := startMosquittoRig(t)
	cloud := r.connect(t, "plain", "fieldwatch-cloud", "fieldwatch-ingest-test", true)
	a := r.connect(t, "password", "farm-a", "fieldwatch-farm-a", true)
	a.subscribe(t, telemetry.AckTopic("farm-a"))
	for i, listener := range []string{"password", "certs"} {
		b := r.connect(t, listener, "farm-b", "fieldwatch-farm-a", true)
		cloud.publish(t, telemetry.AckTopic("farm-a"), false, mqAck(t, uint64(i+1)))
		testenv.Eventually(t, "farm-a receives its ack after "+b.name+" logged in", 20*time.Second, func() bool {
			return a.received(telemetry.AckTopic("farm-a")) == i+1 || a.dropped() != nil
		})
		if err := a.dropped(); err != nil {
			t.Fatalf("%s disconnected farm-a: %v", b.name, err)
		}
		b.Disconnect(100)
	}
}

// TestMosquittoSessionTheft: farm-a has a persistent session with three
// acks queued while it is away. farm-b logs in with farm-a's client id and
// a persistent session, on both gateway listeners: it receives none of
// them (a marker on its own ack topic, published after it subscribed,
// arrives, so anything queued for it would have come first), and farm-a,
// back, receives all three. Without use_username_as_clientid Mosquitto
// hands farm-a's session to farm-b and the queued acks are gone.
func TestMosquittoSessionTheft(t *testing.T) {
	r := startMosquittoRig(t)
	a := r.connect(t, "password", "farm-a", "fieldwatch-farm-a", false)
	a.subscribe(t, telemetry.AckTopic("farm-a"))
	// Disconnect returns after its quiesce time even if the connection is
	// still open; given time, it returns once the connection is closed, so
	// the acks below are queued for the session, not delivered to a.
	a.Disconnect(30_000)
	cloud := r.connect(t, "plain", "fieldwatch-cloud", "fieldwatch-ingest-test", true)
	for i := range 3 {
		cloud.publish(t, telemetry.AckTopic("farm-a"), false, mqAck(t, uint64(i+1)))
	}
	for i, listener := range []string{"password", "certs"} {
		b := r.connect(t, listener, "farm-b", "fieldwatch-farm-a", false)
		b.subscribe(t, telemetry.AckTopic("farm-b"))
		marker := uint64(100 + i)
		cloud.publish(t, telemetry.AckTopic("farm-b"), false, mqAck(t, marker))
		// This marker, not the one before: farm-b's session is persistent
		// too, and the first marker comes again if the client closed
		// before its PUBACK went out (paho sends both on separate queues).
		testenv.Eventually(t, b.name+" receives the marker on its own ack topic", 20*time.Second, func() bool {
			return b.receivedAck(telemetry.AckTopic("farm-b"), marker)
		})
		if got := b.received("") - b.received(telemetry.AckTopic("farm-b")); got != 0 {
			t.Fatalf("%s received %d messages besides its own acks; want none", b.name, got)
		}
		b.Disconnect(30_000)
	}
	back := r.connect(t, "password", "farm-a", "fieldwatch-farm-a", false)
	testenv.Eventually(t, "farm-a, back, receives its three queued acks", 20*time.Second, func() bool {
		return back.received(telemetry.AckTopic("farm-a")) == 3
	})
}

// TestMosquittoAlertReaderCannotPublish: the alerts reader publishes a
// batch and a retained state on fieldwatch/v1/fieldwatch-alerts/, which the
// ACL's patterns grant every user; its "topic deny" takes them back, so the
// cloud's user receives neither (Mosquitto still sends PUBACK), while a
// gateway's batch published after them arrives; the reader still reads
// alerts.
func TestMosquittoAlertReaderCannotPublish(t *testing.T) {
	r := startMosquittoRig(t)
	cloud := r.connect(t, "plain", "fieldwatch-cloud", "fieldwatch-ingest-test", true)
	cloud.subscribe(t, telemetry.UpFilter)
	cloud.subscribe(t, telemetry.StateFilter)
	reader := r.connect(t, "password", "fieldwatch-alerts", "control-room", true)
	online, err := telemetry.EncodeState(telemetry.State{State: telemetry.StateOnline, Site: "north"})
	if err != nil {
		t.Fatal(err)
	}
	reader.publish(t, telemetry.UpTopic("fieldwatch-alerts"), false, mqBatch(t, "fieldwatch-alerts", 1))
	reader.publish(t, telemetry.StateTopic("fieldwatch-alerts"), true, online)
	// Mosquitto routes a publish before it acknowledges it, and delivers to
	// one subscriber in order: had either passed, it would come before this.
	a := r.connect(t, "password", "farm-a", "fieldwatch-farm-a", true)
	a.publish(t, telemetry.UpTopic("farm-a"), false, mqBatch(t, "farm-a", 1))
	testenv.Eventually(t, "farm-a's batch reaches the cloud's user", 20*time.Second, func() bool {
		return cloud.received(telemetry.UpTopic("farm-a")) == 1
	})
	if got := cloud.received(""); got != 1 {
		t.Fatalf("the cloud's user received %d messages; want only farm-a's batch (the reader's were let through)", got)
	}
	if !reader.subscribe(t, "fieldwatch/v1/alerts/#") {
		t.Fatal("the alerts reader may not subscribe to the alerts")
	}
	cloud.publish(t, "fieldwatch/v1/alerts/warning/north/soil-dry", false, []byte(`{"status":"firing"}`))
	testenv.Eventually(t, "the reader receives the alert", 20*time.Second, func() bool {
		return reader.received("fieldwatch/v1/alerts/warning/north/soil-dry") == 1
	})
}

// TestMosquittoPacketCap: a PUBLISH bigger than max_packet_size (1,100,000
// bytes) costs farm-b its connection and reaches no one; farm-a, connected
// throughout, stays connected and its largest batch (telemetry.MaxBatchBytes)
// still passes.
func TestMosquittoPacketCap(t *testing.T) {
	r := startMosquittoRig(t)
	cloud := r.connect(t, "plain", "fieldwatch-cloud", "fieldwatch-ingest-test", true)
	cloud.subscribe(t, telemetry.UpFilter)
	a := r.connect(t, "password", "farm-a", "fieldwatch-farm-a", true)
	b := r.connect(t, "password", "farm-b", "fieldwatch-farm-b", true)
	tok := b.Publish(telemetry.UpTopic("farm-b"), 1, false, make([]byte, 1_100_000))
	if !tok.WaitTimeout(60 * time.Second) {
		t.Fatal("no answer to the oversized publish in 60s")
	}
	if tok.Error() == nil {
		t.Fatal("Mosquitto acknowledged a publish above max_packet_size")
	}
	testenv.Eventually(t, "farm-b disconnected", 20*time.Second, func() bool { return b.dropped() != nil })
	a.publish(t, telemetry.UpTopic("farm-a"), false, make([]byte, telemetry.MaxBatchBytes))
	testenv.Eventually(t, "farm-a's largest batch reaches the cloud's user", 30*time.Second, func() bool {
		return cloud.received(telemetry.UpTopic("farm-a")) == 1
	})
	if got := cloud.received(""); got != 1 {
		t.Fatalf("the cloud's user received %d messages; want only farm-a's", got)
	}
	if err := a.dropped(); err != nil {
		t.Fatalf("farm-a was disconnected: %v", err)
	}
}

// TestMosquittoConfigTopic: on the shipped ACL only the cloud's user sets a
// gateway's desired configuration (retained on fieldwatch/v1/<gw>/config)
// and its release manifest (fieldwatch/v1/<gw>/release), and a gateway
// reads its own only. farm-b overwriting farm-a's retained
// config, and farm-a overwriting its own, are dropped (Mosquitto still
// acknowledges them); farm-a then receives exactly the cloud's envelope;
// farm-b, subscribed to farm-a's topic (Mosquitto grants every SUBSCRIBE),
// receives nothing of it — checked once its own retained config, asked for
// after, has arrived.
func TestMosquittoConfigTopic(t *testing.T) {
	for name, topic := range map[string]func(string) string{"config": telemetry.ConfigTopic, "release": telemetry.ReleaseTopic} {
		t.Run(name, func(t *testing.T) {
			r := startMosquittoRig(t)
			cloud := r.connect(t, "plain", "fieldwatch-cloud", "fieldwatch-ingest-test", true)
			cloud.publish(t, topic("farm-a"), true, []byte(`{"from":"cloud","for":"farm-a"}`))
			cloud.publish(t, topic("farm-b"), true, []byte(`{"from":"cloud","for":"farm-b"}`))
			b := r.connect(t, "password", "farm-b", "fieldwatch-farm-b", true)
			a := r.connect(t, "password", "farm-a", "fieldwatch-farm-a", true)
			b.publish(t, topic("farm-a"), true, []byte(`{"from":"farm-b"}`))
			a.publish(t, topic("farm-a"), true, []byte(`{"from":"farm-a"}`))

			a.subscribe(t, topic("farm-a"))
			testenv.Eventually(t, "farm-a receives its retained config", 20*time.Second, func() bool {
				return a.received(topic("farm-a")) == 1
			})
			a.mu.Lock()
			got := string(a.got[0].Payload())
			a.mu.Unlock()
			if got != `{"from":"cloud","for":"farm-a"}` {
				t.Fatalf("farm-a's retained config is %s: a gateway overwrote it", got)
			}
			b.subscribe(t, topic("farm-a"))
			b.subscribe(t, topic("farm-b"))
			testenv.Eventually(t, "farm-b receives its own retained config", 20*time.Second, func() bool {
				return b.received(topic("farm-b")) == 1
			})
			if n := b.received(topic("farm-a")); n != 0 {
				t.Fatalf("farm-b received %d of farm-a's configs", n)
			}
		})
	}
}

// TestMosquittoCommandTopics: with the shipped Mosquitto config and ACL,
// only the cloud sends commands, each gateway receives only its own, and
// only a gateway itself answers on its reply topic, which only the cloud
// reads.
func TestMosquittoCommandTopics(t *testing.T) {
	r := startMosquittoRig(t)
	cloud := r.connect(t, "plain", "fieldwatch-cloud", "fieldwatch-ingest-test", true)
	b := r.connect(t, "password", "farm-b", "fieldwatch-farm-b", true)
	a := r.connect(t, "password", "farm-a", "fieldwatch-farm-a", true)
	cloud.subscribe(t, telemetry.ReplyFilter)
	a.subscribe(t, telemetry.CmdTopic("farm-a"))
	for _, topic := range []string{telemetry.CmdTopic("farm-a"), telemetry.ReplyTopic("farm-a"), telemetry.CmdTopic("farm-b")} {
		b.subscribe(t, topic) // refused or filtered, but its own
	}
	b.publish(t, telemetry.CmdTopic("farm-a"), false, []byte(`{"from":"farm-b"}`))
	a.publish(t, telemetry.CmdTopic("farm-a"), false, []byte(`{"from":"farm-a"}`))
	cloud.publish(t, telemetry.CmdTopic("farm-a"), false, []byte(`{"from":"cloud","for":"farm-a"}`))
	cloud.publish(t, telemetry.CmdTopic("farm-b"), false, []byte(`{"from":"cloud","for":"farm-b"}`))
	testenv.Eventually(t, "each gateway receives the cloud's command to it", 20*time.Second, func() bool {
		return a.received(telemetry.CmdTopic("farm-a")) >= 1 && b.received(telemetry.CmdTopic("farm-b")) == 1
	})
	b.publish(t, telemetry.ReplyTopic("farm-a"), false, []byte(`{"from":"farm-b"}`))
	a.publish(t, telemetry.ReplyTopic("farm-a"), false, []byte(`{"from":"farm-a"}`))
	testenv.Eventually(t, "the cloud receives farm-a's reply", 20*time.Second, func() bool {
		return cloud.received(telemetry.ReplyTopic("farm-a")) >= 1
	})
	payloads := func(c *mqClient, topic string) (out []string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, m := range c.got {
			if m.Topic() == topic {
				out = append(out, string(m.Payload()))
			}
		}
		return out
	}
	if got := payloads(a, telemetry.CmdTopic("farm-a")); len(got) != 1 || got[0] != `{"from":"cloud","for":"farm-a"}` {
		t.Errorf("farm-a received commands %q; want the cloud's only", got)
	}
	if got := payloads(cloud, telemetry.ReplyTopic("farm-a")); len(got) != 1 || got[0] != `{"from":"farm-a"}` {
		t.Errorf("the cloud received replies %q on farm-a's topic; want farm-a's only", got)
	}
	if n := b.received(telemetry.CmdTopic("farm-a")) + b.received(telemetry.ReplyTopic("farm-a")); n != 0 {
		t.Errorf("farm-b received %d of farm-a's commands and replies", n)
	}
}
