package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/cloud/internal/passwd"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// The tests in this file prove what the outside audit of issue 12 found
// closed, each hole with a test of its own, on a real broker and real
// clients.

// users writes a mosquitto_passwd file where each user's password is
// "pw-"+user, and loads it.
func users(t *testing.T, names ...string) *passwd.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passwd")
	for _, u := range names {
		testenv.MosquittoPasswd(t, path, u, "pw-"+u, "sha512")
	}
	f, err := passwd.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// as logs in as user with its password.
func (r *rig) as(id, user string) *mqtt.ClientOptions {
	return opts(r.b.URL(), id, user, "pw-"+user)
}

// ingestor is the cloud's shared subscriber, as cloud/internal/ingest
// subscribes: every batch it receives goes to got.
func (r *rig) ingestor(t *testing.T, id string, got chan<- string) mqtt.Client {
	t.Helper()
	in := r.b.Internal()
	c := testenv.MQTTConnect(t, opts(r.b.InternalURL(), id, in.Username, in.Password))
	tok := c.Subscribe("$share/ingest/fieldwatch/v1/+/up", 1, func(_ mqtt.Client, m mqtt.Message) {
		got <- m.Topic() + " " + string(m.Payload())
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("the ingestor cannot subscribe: %v", tok.Error())
	}
	if code := tok.(*mqtt.SubscribeToken).Result()["fieldwatch/v1/+/up"]; code != 1 {
		t.Fatalf("the ingestor's shared subscription got %#x", code)
	}
	return c
}

// TestSharedGroupHijack (issue 12, 1): clients with gateway B's
// credentials cannot join the ingestor's shared group, or any shared
// group, and so cannot be handed (and drop) a share of gateway A's
// batches: all of A's batches reach the ingestor.
func TestSharedGroupHijack(t *testing.T) {
	r := start(t, Options{Listen: "127.0.0.1:0", Users: users(t, "farm-a", "farm-b")})
	got := make(chan string, 100)
	r.ingestor(t, "ingest-1", got)
	var stolen atomic.Int64
	filters := []string{
		"$share/ingest/fieldwatch/v1/+/up",
		"$share/ingest/fieldwatch/v1/farm-a/up",
		"$share/x/#",
		"$share/ingest/fieldwatch/v1/farm-b/ack", // its own acks, but through a group
		"$SHARE/ingest/fieldwatch/v1/+/up",       // Mochi reads $share in any case
	}
	for i := range 3 {
		o := r.as(fmt.Sprint("b-", i), "farm-b").SetDefaultPublishHandler(func(mqtt.Client, mqtt.Message) { stolen.Add(1) })
		c := testenv.MQTTConnect(t, o)
		for _, f := range filters {
			if code := subscribeCode(t, c, f); code != 0x80 {
				t.Errorf("farm-b client %d subscribing to %s got %#x, want 0x80 (refused)", i, f, code)
			}
		}
	}
	if d := r.denied("subscribe"); d != float64(3*len(filters)) {
		t.Errorf("denied subscriptions %v, want %d", d, 3*len(filters))
	}
	a := testenv.MQTTConnect(t, r.as("a", "farm-a"))
	const batches = 20
	for i := range batches {
		publish(t, a, "fieldwatch/v1/farm-a/up", fmt.Sprint("batch-", i), 1)
	}
	seen := map[string]bool{}
	timeout := time.After(wait)
	for len(seen) < batches {
		select {
		case m := <-got:
			seen[m] = true
		case <-timeout:
			t.Fatalf("the ingestor received %d of farm-a's %d batches: %v", len(seen), batches, seen)
		}
	}
	for i := range batches {
		if !seen[fmt.Sprint("fieldwatch/v1/farm-a/up batch-", i)] {
			t.Errorf("batch %d missing", i)
		}
	}
	if n := stolen.Load(); n != 0 {
		t.Errorf("farm-b's clients received %d messages", n)
	}
}

// TestAlertReaderIsNoStation (issue 12, 4): an alert reader whose name is
// also a valid gateway id publishes nothing (no batch, no state) and reads
// only the alerts.
func TestAlertReaderIsNoStation(t *testing.T) {
	r := start(t, Options{Listen: "127.0.0.1:0", Users: users(t, "display"), AlertReaders: []string{"display"}})
	obs := r.observer(t)
	d := listen(t, r.as("d", "display"), "fieldwatch/v1/alerts/#")
	for _, f := range []string{"fieldwatch/v1/display/ack", "fieldwatch/v1/#", "$share/g/fieldwatch/v1/alerts/#"} {
		if code := subscribeCode(t, d, f); code != 0x80 {
			t.Errorf("the alert reader subscribing to %s got %#x, want 0x80", f, code)
		}
	}
	// QoS 0: no way to refuse but to drop. The broker handles one client's
	// packets in order and queues to the observer in order, so a batch
	// let through would reach the observer before the alert published after.
	publish(t, d, "fieldwatch/v1/display/up", "forged", 0)
	publish(t, d, "fieldwatch/v1/display/state", "forged", 0)
	publish(t, d, "fieldwatch/v1/alerts/red/x/y", "forged", 0)
	if code := subscribeCode(t, d, "fieldwatch/v1/alerts/+/north/#"); code != 1 {
		t.Errorf("the alert reader's own subscription got %#x", code)
	}
	publish(t, obs, "fieldwatch/v1/alerts/red/north/frost", "alert", 1)
	testenv.Eventually(t, "the alert at the reader and the observer", wait, func() bool {
		return d.has("fieldwatch/v1/alerts/red/north/frost alert") && obs.has("fieldwatch/v1/alerts/red/north/frost alert")
	})
	for _, m := range append(obs.list(), d.list()...) {
		if m != "fieldwatch/v1/alerts/red/north/frost alert" {
			t.Errorf("unexpected delivery %q", m)
		}
	}
	if p := r.denied("publish"); p != 3 {
		t.Errorf("denied publishes %v, want 3", p)
	}
	// A QoS 1 batch costs the reader its connection.
	lost := make(chan error, 1)
	c := testenv.MQTTConnect(t, r.as("d2", "display").SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost <- err }))
	c.Publish("fieldwatch/v1/display/up", 1, false, "forged-qos1")
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("an alert reader publishing a batch with QoS 1 kept its connection")
	}
}

// connectPacket is an MQTT 3.1.1 CONNECT.
func connectPacket(id, user, password string, clean bool) []byte {
	var b bytes.Buffer
	str := func(s string) {
		b.Write([]byte{byte(len(s) >> 8), byte(len(s))})
		b.WriteString(s)
	}
	str("MQTT")
	b.WriteByte(4)
	var flags byte
	if clean {
		flags |= 0x02
	}
	if user != "" {
		flags |= 0x80
	}
	if password != "" {
		flags |= 0x40
	}
	b.Write([]byte{flags, 0, 60})
	str(id)
	if user != "" {
		str(user)
	}
	if password != "" {
		str(password)
	}
	return append(fixedHeader(0x10, b.Len()), b.Bytes()...)
}

// fixedHeader is a packet's first byte and its remaining length.
func fixedHeader(first byte, remaining int) []byte {
	out := []byte{first}
	for {
		d := byte(remaining % 128)
		remaining /= 128
		if remaining > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if remaining == 0 {
			return out
		}
	}
}

// exchange sends packet to addr and returns all the broker sends back
// until it closes the connection; it fails the test if the broker keeps it
// open longer than wait.
func exchange(t *testing.T, addr string, packet []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(packet); err != nil {
		t.Fatal(err)
	}
	return untilClosed(t, c)
}

// untilClosed reads until the broker closes c, at most wait.
func untilClosed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the broker kept the connection open for %v; it sent %x", wait, got)
	}
	return got
}

// identifierRejected is a 3.1.1 CONNACK refusing the client id.
var identifierRejected = []byte{0x20, 0x02, 0x00, 0x02}

// TestClientIDTakeover (issue 12, 2): a client id belongs to one user. A
// CONNECT with the id of another user's connected client is refused
// (identifier rejected), counted and logged once per period, and the real
// client stays connected; the same user connecting again with its own id
// takes its session over, as MQTT says.
func TestClientIDTakeover(t *testing.T) {
	r := start(t, Options{Listen: "127.0.0.1:0", Users: users(t, "farm-a", "farm-b")})
	obs := r.observer(t)
	lost := make(chan error, 1)
	a := listen(t, r.as("fieldwatch-farm-a", "farm-a").SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost <- err }),
		"fieldwatch/v1/farm-a/ack")
	const tries = 3
	for i := range tries {
		if got := exchange(t, r.b.Addr(), connectPacket("fieldwatch-farm-a", "farm-b", "pw-farm-b", i%2 == 0)); !bytes.Equal(got, identifierRejected) {
			t.Fatalf("farm-b with farm-a's client id: the broker sent %x, want %x and the end", got, identifierRejected)
		}
	}
	if err := testenv.MQTTRefused(t, r.as("fieldwatch-farm-a", "farm-b")); err == nil {
		t.Fatal("paho as farm-b with farm-a's client id was admitted")
	}
	if n := r.authFailures(reasonClientID); n != tries+1 {
		t.Errorf("client_id_taken refusals %v, want %d", n, tries+1)
	}
	if n := strings.Count(r.log.String(), "the client id belongs to another user"); n != 1 {
		t.Errorf("%d log lines for the refusals, want 1 (throttled):\n%s", n, r.log.String())
	}
	// farm-a is still connected and subscribed: it gets its ack, and lost
	// nothing on the way.
	publish(t, obs, "fieldwatch/v1/farm-a/ack", "ack-1", 1)
	testenv.Eventually(t, "farm-a's ack", wait, func() bool { return a.has("fieldwatch/v1/farm-a/ack ack-1") })
	select {
	case err := <-lost:
		t.Fatalf("farm-a lost its connection: %v", err)
	default:
	}
	// farm-a again, with its own id: it takes the session over.
	a2 := listen(t, r.as("fieldwatch-farm-a", "farm-a"), "fieldwatch/v1/farm-a/ack")
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("farm-a reconnecting with its own client id did not take its session over")
	}
	publish(t, obs, "fieldwatch/v1/farm-a/ack", "ack-2", 1)
	testenv.Eventually(t, "farm-a's second ack", wait, func() bool { return a2.has("fieldwatch/v1/farm-a/ack ack-2") })
	if n := r.authFailures(reasonClientID); n != tries+1 {
		t.Errorf("client_id_taken refusals %v after farm-a's own takeover, want %d", n, tries+1)
	}
}

// TestSessionTheft (issue 12, 3): gateway B cannot resume gateway A's
// persistent session: B is refused and receives nothing, and A, coming
// back, gets the ack queued for it.
func TestSessionTheft(t *testing.T) {
	r := start(t, Options{Listen: "127.0.0.1:0", Users: users(t, "farm-a", "farm-b")})
	obs := r.observer(t)
	const id = "fieldwatch-farm-a"
	a := mqtt.NewClient(r.as(id, "farm-a").SetCleanSession(false))
	if tok := a.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("farm-a: %v", tok.Error())
	}
	if tok := a.Subscribe("fieldwatch/v1/farm-a/ack", 1, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("farm-a subscribes: %v", tok.Error())
	}
	a.Disconnect(250)
	// The ack goes into farm-a's kept session. Publish and wait for
	// PUBACK: the broker has queued it by then.
	publish(t, obs, "fieldwatch/v1/farm-a/ack", "queued-ack", 1)

	if got := exchange(t, r.b.Addr(), connectPacket(id, "farm-b", "pw-farm-b", false)); !bytes.Equal(got, identifierRejected) {
		t.Fatalf("farm-b resuming farm-a's session: the broker sent %x, want only %x", got, identifierRejected)
	}
	if n := r.authFailures(reasonClientID); n != 1 {
		t.Errorf("client_id_taken refusals %v, want 1", n)
	}

	got := make(chan string, 10)
	o := r.as(id, "farm-a").SetCleanSession(false).SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
		got <- m.Topic() + " " + string(m.Payload())
	})
	a = testenv.MQTTConnect(t, o)
	select {
	case m := <-got:
		if m != "fieldwatch/v1/farm-a/ack queued-ack" {
			t.Fatalf("farm-a got %q", m)
		}
	case <-time.After(wait):
		t.Fatal("farm-a did not get the ack queued in its session")
	}
}
