package broker

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/passwd"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

const wait = 30 * time.Second

// rig is a running embedded broker with its metrics and log.
type rig struct {
	b   *Broker
	m   *Metrics
	log *testenv.LogBuffer
}

func start(t *testing.T, o Options) *rig {
	t.Helper()
	r := &rig{m: NewMetrics(prometheus.NewRegistry()), log: &testenv.LogBuffer{}}
	o.Metrics = r.m
	o.Log = slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	r.b = b
	return r
}

func (r *rig) authFailures(reason string) float64 {
	return testutil.ToFloat64(r.m.authFailures.WithLabelValues(reason))
}

func (r *rig) denied(action string) float64 {
	return testutil.ToFloat64(r.m.aclDenied.WithLabelValues(action))
}

func opts(url, id, user, password string) *mqtt.ClientOptions {
	return mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(password).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetProtocolVersion(4)
}

// inbox is a client that records what it receives, in order.
type inbox struct {
	mqtt.Client
	mu  sync.Mutex
	got []string // "topic payload"
}

func listen(t *testing.T, o *mqtt.ClientOptions, filters ...string) *inbox {
	t.Helper()
	in := &inbox{}
	in.Client = testenv.MQTTConnect(t, o)
	for _, f := range filters {
		tok := in.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) {
			in.mu.Lock()
			in.got = append(in.got, m.Topic()+" "+string(m.Payload()))
			in.mu.Unlock()
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
	return in
}

func (in *inbox) has(msg string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, g := range in.got {
		if g == msg {
			return true
		}
	}
	return false
}

func (in *inbox) list() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.got...)
}

// observer is the cloud's privileged view of everything under fieldwatch/v1/.
func (r *rig) observer(t *testing.T) *inbox {
	in := r.b.Internal()
	return listen(t, opts(r.b.InternalURL(), "observer", in.Username, in.Password), "fieldwatch/v1/#")
}

func publish(t *testing.T, c mqtt.Client, topic, payload string, qos byte) {
	t.Helper()
	if tok := c.Publish(topic, qos, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// subscribeCode is the broker's answer to a subscription (0x80 refused).
func subscribeCode(t *testing.T, c mqtt.Client, filter string) byte {
	t.Helper()
	tok := c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	// Paho keys the result by the filter without its $share/<group>/.
	res := tok.(*mqtt.SubscribeToken).Result()
	if len(res) != 1 {
		t.Fatalf("subscribe %s: results %v", filter, res)
	}
	for _, code := range res {
		return code
	}
	return 0
}

// checkIsolation proves, on a broker where farm-a and farm-b log in with
// the given options, that farm-a can neither publish as farm-b nor read
// farm-b's acks, while its own traffic flows.
func checkIsolation(t *testing.T, r *rig, a, a2, b *mqtt.ClientOptions) {
	obs := r.observer(t)
	ca := listen(t, a, "fieldwatch/v1/farm-a/ack")
	if code := subscribeCode(t, ca, "fieldwatch/v1/farm-b/ack"); code != 0x80 {
		t.Errorf("farm-a subscribing to farm-b's acks got %#x, want 0x80 (refused)", code)
	}
	for _, f := range []string{"fieldwatch/v1/+/ack", "fieldwatch/v1/#", "#"} {
		if code := subscribeCode(t, ca, f); code != 0x80 {
			t.Errorf("farm-a subscribing to %s got %#x, want 0x80", f, code)
		}
	}
	// QoS 0 forgeries, then farm-a's own batch: the broker handles one
	// client's packets in order, so the observer would see a forgery
	// before the batch.
	publish(t, ca, "fieldwatch/v1/farm-b/up", "forged", 0)
	publish(t, ca, "fieldwatch/v1/farm-b/state", "forged", 0)
	publish(t, ca, "fieldwatch/v1/farm-a/up", "mine", 1)
	testenv.Eventually(t, "farm-a's own batch", wait, func() bool { return obs.has("fieldwatch/v1/farm-a/up mine") })
	// A QoS 1 forgery (what a gateway sends) costs the client its connection.
	lost := make(chan error, 1)
	c2 := testenv.MQTTConnect(t, a2.SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost <- err }))
	c2.Publish("fieldwatch/v1/farm-b/up", 1, false, "forged-qos1")
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("a client publishing as another gateway with QoS 1 kept its connection")
	}
	cb := listen(t, b, "fieldwatch/v1/farm-b/ack")
	publish(t, cb, "fieldwatch/v1/farm-b/up", "theirs", 1)
	testenv.Eventually(t, "farm-b's own batch", wait, func() bool { return obs.has("fieldwatch/v1/farm-b/up theirs") })
	// The cloud acks farm-b, then farm-a: farm-a would get farm-b's first.
	publish(t, obs, "fieldwatch/v1/farm-b/ack", "ack-b", 1)
	publish(t, obs, "fieldwatch/v1/farm-a/ack", "ack-a", 1)
	testenv.Eventually(t, "acks delivered", wait, func() bool {
		return cb.has("fieldwatch/v1/farm-b/ack ack-b") && ca.has("fieldwatch/v1/farm-a/ack ack-a")
	})
	for _, m := range obs.list() {
		if strings.Contains(m, "forged") {
			t.Errorf("the observer received a forgery: %s", m)
		}
	}
	if got := ca.list(); len(got) != 1 {
		t.Errorf("farm-a received %q; want only its own ack", got)
	}
	if r.denied("publish") < 3 || r.denied("subscribe") < 4 {
		t.Errorf("denied publishes %v, subscriptions %v; want at least 3 and 4", r.denied("publish"), r.denied("subscribe"))
	}
}

// TestZeroConfigKeepsGatewaysApart: with no password file, on loopback,
// clients are known by the name they give, and the ACL keys on it.
func TestZeroConfigKeepsGatewaysApart(t *testing.T) {
	r := start(t, Options{Listen: "127.0.0.1:0"})
	url := r.b.URL()
	checkIsolation(t, r, opts(url, "a", "farm-a", ""), opts(url, "a2", "farm-a", ""), opts(url, "b", "farm-b", ""))
	if err := testenv.MQTTRefused(t, opts(url, "x", InternalUser, r.b.Internal().Password)); err == nil {
		t.Error("the ingestor's identity was accepted on the gateways' listener")
	}
	if r.authFailures(reasonReserved) != 1 {
		t.Errorf("reserved_user refusals %v, want 1", r.authFailures(reasonReserved))
	}
}

// TestLastWill: a gateway's will may only be its own state; a will on
// another's is refused at connect and counted, its own is published when
// the connection breaks.
func TestLastWill(t *testing.T) {
	r := start(t, Options{Listen: "127.0.0.1:0"})
	obs := r.observer(t)
	err := testenv.MQTTRefused(t, opts(r.b.URL(), "a", "farm-a", "").SetWill("fieldwatch/v1/farm-b/state", "offline", 1, true))
	if err == nil || r.denied("will") != 1 {
		t.Fatalf("a will on another gateway's state: %v, denied wills %v", err, r.denied("will"))
	}
	var conn net.Conn
	o := opts(r.b.URL(), "a", "farm-a", "").SetWill("fieldwatch/v1/farm-a/state", "offline", 1, true).
		SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			c, err := net.Dial("tcp", u.Host)
			conn = c
			return c, err
		})
	testenv.MQTTConnect(t, o)
	conn.Close() // no DISCONNECT: the will goes out
	testenv.Eventually(t, "farm-a's will", wait, func() bool { return obs.has("fieldwatch/v1/farm-a/state offline") })
}

// TestPasswordFile uses a file written by mosquitto_passwd: right
// passwords get in, wrong ones, unknown users and nameless clients do not,
// and no password reaches the log.
func TestPasswordFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	testenv.MosquittoPasswd(t, path, "farm-a", "pw-a-2f9c", "")
	testenv.MosquittoPasswd(t, path, "farm-b", "pw-b-77d1", "sha512")
	users, err := passwd.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, Options{Listen: "127.0.0.1:0", Users: users})
	url := r.b.URL()
	checkIsolation(t, r, opts(url, "a", "farm-a", "pw-a-2f9c"), opts(url, "a2", "farm-a", "pw-a-2f9c"),
		opts(url, "b", "farm-b", "pw-b-77d1"))
	refusals := []struct{ user, password, reason string }{
		{"farm-a", "pw-b-77d1", reasonBadPassword},
		{"farm-a", "", reasonBadPassword},
		{"farm-c", "pw-a-2f9c", reasonUnknownUser},
		{"", "pw-a-2f9c", reasonNoUser},
		{InternalUser, r.b.Internal().Password, reasonReserved},
	}
	for i, c := range refusals {
		if err := testenv.MQTTRefused(t, opts(url, fmt.Sprint("x", i), c.user, c.password)); err == nil {
			t.Errorf("%q with password %q admitted", c.user, c.password)
		}
		if got := r.authFailures(c.reason); got < 1 {
			t.Errorf("%s not counted for %q", c.reason, c.user)
		}
	}
	logs := r.log.String()
	for _, secret := range []string{"pw-a-2f9c", "pw-b-77d1", r.b.Internal().Password} {
		if strings.Contains(logs, secret) {
			t.Errorf("the broker's log shows a password:\n%s", logs)
		}
	}
	if !strings.Contains(logs, "connection refused") || !strings.Contains(logs, "topic not allowed") {
		t.Errorf("the log does not say what was refused:\n%s", logs)
	}
}

// TestClientCertificates: on a TLS listener requiring client certificates,
// the certificate's CN is the user name whatever name the client sends; a
// client without a certificate or with one from another CA is refused at
// the handshake.
func TestClientCertificates(t *testing.T) {
	ca, rogue := testenv.NewCA(t, "fieldwatch CA"), testenv.NewCA(t, "rogue CA")
	srv := ca.Server(t, "broker")
	r := start(t, Options{TLSListen: "127.0.0.1:0", TLS: &tls.Config{Certificates: []tls.Certificate{srv.TLS},
		ClientCAs: ca.Pool, ClientAuth: tls.RequireAndVerifyClientCert}})
	if r.b.URL() != "" {
		t.Fatalf("a plain listener was opened: %s", r.b.URL())
	}
	url := r.b.TLSURL()
	withCert := func(id, cn, claimed string) *mqtt.ClientOptions {
		c := ca.Client(t, cn)
		return opts(url, id, claimed, "").SetTLSConfig(&tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{c.TLS}})
	}
	// farm-a claims to be farm-b: its certificate says otherwise.
	checkIsolation(t, r, withCert("a", "farm-a", "farm-b"), withCert("a2", "farm-a", ""), withCert("b", "farm-b", "farm-b"))
	for name, c := range map[string]*tls.Config{
		"no certificate": {RootCAs: ca.Pool},
		"another CA":     {RootCAs: ca.Pool, Certificates: []tls.Certificate{rogue.Client(t, "farm-a").TLS}},
	} {
		before := r.authFailures(reasonTLS)
		if err := testenv.MQTTRefused(t, opts(url, "x", "farm-a", "").SetTLSConfig(c)); err == nil {
			t.Errorf("%s: admitted", name)
		}
		testenv.Eventually(t, name+" counted", wait, func() bool { return r.authFailures(reasonTLS) >= before+1 })
	}
}

// TestTLSWithPasswords: a TLS listener that does not require certificates
// takes passwords, and still refuses wrong ones.
func TestTLSWithPasswords(t *testing.T) {
	ca := testenv.NewCA(t, "fieldwatch CA")
	srv := ca.Server(t, "broker")
	path := filepath.Join(t.TempDir(), "passwd")
	testenv.MosquittoPasswd(t, path, "farm-a", "pw-a", "")
	users, err := passwd.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, Options{TLSListen: "127.0.0.1:0", Users: users, TLS: &tls.Config{Certificates: []tls.Certificate{srv.TLS}}})
	c := &tls.Config{RootCAs: ca.Pool}
	if err := testenv.MQTTRefused(t, opts(r.b.TLSURL(), "a", "farm-a", "pw-a").SetTLSConfig(c)); err != nil {
		t.Fatalf("right password over TLS refused: %v", err)
	}
	if err := testenv.MQTTRefused(t, opts(r.b.TLSURL(), "a", "farm-a", "nope").SetTLSConfig(c)); err == nil {
		t.Fatal("wrong password over TLS admitted")
	}
}

func TestExposure(t *testing.T) {
	users, _ := passwd.Parse(nil)
	required := &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
	optional := &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven}
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"loopback", Options{Listen: "127.0.0.1:1883", TLSListen: "[::1]:8883", TLS: optional}, true},
		{"localhost", Options{Listen: "localhost:1883"}, true},
		{"all interfaces", Options{Listen: ":1883"}, false},
		{"a LAN address", Options{Listen: "192.0.2.1:1883"}, false},
		{"with passwords", Options{Listen: "0.0.0.0:1883", Users: users}, true},
		{"allow_anonymous", Options{Listen: "0.0.0.0:1883", AllowAnonymous: true}, true},
		{"TLS requiring certificates", Options{TLSListen: "0.0.0.0:8883", TLS: required}, true},
		{"TLS with optional certificates", Options{TLSListen: "0.0.0.0:8883", TLS: optional}, false},
		{"TLS fine, plain exposed", Options{Listen: "0.0.0.0:1883", TLSListen: "0.0.0.0:8883", TLS: required}, false},
	}
	for _, tc := range tests {
		err := checkExposure(tc.o)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "allow_anonymous") {
			t.Errorf("%s: the error does not say what to do: %v", tc.name, err)
		}
	}
	if _, err := Start(Options{Listen: ":0", Log: slog.New(slog.DiscardHandler)}); err == nil {
		t.Fatal("Start listened on every interface without a password file")
	}
}
