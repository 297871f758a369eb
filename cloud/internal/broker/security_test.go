package broker

import (
	"fmt"
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
