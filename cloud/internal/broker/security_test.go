package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
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

// connectAndPing sends a CONNECT and a PINGREQ on one connection and
// returns everything the broker sent up to its PINGRESP. The broker writes
// a resumed session's queued messages right after the CONNACK, before it
// reads the PINGREQ, so whatever a session would hand over is in the
// answer: no waiting for an absence.
func connectAndPing(t *testing.T, addr string, connect []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(append(append([]byte(nil), connect...), 0xc0, 0x00)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(got, []byte{0xd0, 0x00}) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("the broker sent %x, then: %v", got, err)
		}
	}
	return got
}

// TestClientIDTakeover (issue 12, 2): a client id belongs to one user. The
// broker knows a client by its user and the id it gave, so farm-b giving
// farm-a's id is admitted as a client of its own: farm-a stays connected
// and keeps receiving, and farm-b cannot squat farm-c's id either (farm-c
// still gets in, and both stay connected). The same user connecting again
// with its own id takes its session over, as MQTT says.
func TestClientIDTakeover(t *testing.T) {
	r := start(t, Options{Listen: "127.0.0.1:0", Users: users(t, "farm-a", "farm-b", "farm-c")})
	obs := r.observer(t)
	lost := func(name string, ch chan string) *mqtt.ClientOptions {
		return r.as("fieldwatch-"+name, name).SetConnectionLostHandler(func(mqtt.Client, error) { ch <- name })
	}
	lostA, lostOthers := make(chan string, 1), make(chan string, 8)
	a := listen(t, lost("farm-a", lostA), "fieldwatch/v1/farm-a/ack")
	// farm-b with farm-a's id, raw (clean and not: a fresh session each
	// time), then with paho, staying connected.
	for _, clean := range []bool{true, false} {
		if got := connectAndPing(t, r.b.Addr(), connectPacket("fieldwatch-farm-a", "farm-b", "pw-farm-b", clean)); !bytes.Equal(got, []byte{0x20, 0x02, 0x00, 0x00, 0xd0, 0x00}) {
			t.Fatalf("farm-b with farm-a's client id (clean %v): the broker sent %x, want a fresh session and the ping's answer", clean, got)
		}
	}
	b := listen(t, r.as("fieldwatch-farm-a", "farm-b").SetConnectionLostHandler(func(mqtt.Client, error) { lostOthers <- "farm-b" }),
		"fieldwatch/v1/farm-b/ack")
	// farm-b squats farm-c's id first; farm-c still gets in.
	squat := testenv.MQTTConnect(t, r.as("fieldwatch-farm-c", "farm-b").SetConnectionLostHandler(func(mqtt.Client, error) { lostOthers <- "squatter" }))
	c := listen(t, lost("farm-c", lostOthers), "fieldwatch/v1/farm-c/ack")
	// Everyone is still connected: each gets what is published to it after
	// the others connected (paho does not reconnect here, so a client cut
	// off would get nothing).
	publish(t, obs, "fieldwatch/v1/farm-a/ack", "ack-1", 1)
	publish(t, obs, "fieldwatch/v1/farm-b/ack", "b-1", 1)
	publish(t, obs, "fieldwatch/v1/farm-c/ack", "c-1", 1)
	testenv.Eventually(t, "farm-a's ack", wait, func() bool { return a.has("fieldwatch/v1/farm-a/ack ack-1") })
	testenv.Eventually(t, "farm-b's ack", wait, func() bool { return b.has("fieldwatch/v1/farm-b/ack b-1") })
	testenv.Eventually(t, "farm-c's ack", wait, func() bool { return c.has("fieldwatch/v1/farm-c/ack c-1") })
	if !squat.IsConnectionOpen() || !a.IsConnectionOpen() || !b.IsConnectionOpen() || !c.IsConnectionOpen() {
		t.Fatal("a client lost its connection to another user's client with the same id")
	}
	if got := b.list(); len(got) != 1 {
		t.Fatalf("farm-b, holding farm-a's id, received %q; want only its own ack", got)
	}
	// farm-a again, with its own id: it takes the session over.
	a2 := listen(t, r.as("fieldwatch-farm-a", "farm-a"), "fieldwatch/v1/farm-a/ack")
	select {
	case <-lostA:
	case <-time.After(wait):
		t.Fatal("farm-a reconnecting with its own client id did not take its session over")
	}
	publish(t, obs, "fieldwatch/v1/farm-a/ack", "ack-2", 1)
	testenv.Eventually(t, "farm-a's second ack", wait, func() bool { return a2.has("fieldwatch/v1/farm-a/ack ack-2") })
	if !b.IsConnectionOpen() || !c.IsConnectionOpen() || !squat.IsConnectionOpen() {
		t.Fatal("farm-a's own takeover cut off another user's client")
	}
}

// TestSessionTheft (issue 12, 3): gateway B cannot resume gateway A's
// persistent session: giving A's id with clean session false, B gets a
// fresh session of its own and none of A's queued messages; A, coming
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

	// CONNACK with session present 0, then the ping's answer: nothing of
	// farm-a's session in between.
	if got := connectAndPing(t, r.b.Addr(), connectPacket(id, "farm-b", "pw-farm-b", false)); !bytes.Equal(got, []byte{0x20, 0x02, 0x00, 0x00, 0xd0, 0x00}) {
		t.Fatalf("farm-b resuming farm-a's session: the broker sent %x, want a fresh session and the ping's answer only", got)
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
