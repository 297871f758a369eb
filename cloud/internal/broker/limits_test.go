package broker

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// The limits before authentication (issue 12, 5).

func (r *rig) limited(reason string) float64 {
	return testutil.ToFloat64(r.m.limitClosed.WithLabelValues(reason))
}

// dialFrom connects to addr from a loopback address of its own (Linux
// answers on all of 127.0.0.0/8), so a test can play several hosts.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: wait}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// accepted is a 3.1.1 CONNACK admitting the client.
var accepted = []byte{0x20, 0x02, 0x00, 0x00}

// login sends a CONNECT on c and reads the CONNACK, at most wait.
func login(t *testing.T, c net.Conn, id, user, password string) []byte {
	t.Helper()
	if _, err := c.Write(connectPacket(id, user, password, true)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	got := make([]byte, 4)
	n, _ := io.ReadFull(c, got)
	_ = c.SetReadDeadline(time.Time{})
	return got[:n]
}

// TestHugeConnect: a CONNECT declaring 256 MiB, or one of a real 100 KiB
// (a password that long), is closed on its fixed header, before any
// password check and without the broker allocating what it declares.
func TestHugeConnect(t *testing.T) {
	r := start(t, Options{Listen: "127.0.0.1:0", Users: users(t, "farm-a")})
	tests := []struct {
		name   string
		packet []byte
	}{
		{"declares 256 MiB", append(fixedHeader(0x10, 256<<20-1), make([]byte, 4096)...)},
		{"100 KiB password", connectPacket("a", "farm-a", strings.Repeat("p", 100<<10), true)},
	}
	for i, tc := range tests {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if got := exchange(t, r.b.Addr(), tc.packet); len(got) != 0 {
			t.Errorf("%s: the broker answered %x; want the connection closed without a CONNACK", tc.name, got)
		}
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
			t.Errorf("%s: the process allocated %d MiB meanwhile", tc.name, grew>>20)
		}
		if n := r.limited(limitConnectSize); n != float64(i+1) {
			t.Errorf("%s: connect_too_large %v, want %d", tc.name, n, i+1)
		}
	}
	if n := r.authFailures(reasonBadPassword); n != 0 {
		t.Errorf("a password was checked: bad_password %v", n)
	}
	// A CONNECT within the limit still gets in.
	if got := login(t, dialFrom(t, "127.0.0.1", r.b.Addr()), "a", "farm-a", "pw-farm-a"); !bytes.Equal(got, accepted) {
		t.Errorf("a normal CONNECT got %x", got)
	}
}

// publishPacket is a QoS 0 PUBLISH.
func publishPacket(topic string, payload []byte) []byte {
	body := append([]byte{byte(len(topic) >> 8), byte(len(topic))}, topic...)
	body = append(body, payload...)
	return append(fixedHeader(0x30, len(body)), body...)
}

// TestConnectDeadline: connections that never send CONNECT, or send only
// part of it, are closed at the connect timeout, counted, and logged once
// per period — a meaningful line, never Mochi's empty warning; a client
// that logged in before is not cut.
func TestConnectDeadline(t *testing.T) {
	// The logged-in client must complete its CONNECT within the timeout,
	// however late a loaded machine schedules the broker's reader: two
	// seconds, not a fraction of one. The idle ones wait it out.
	r := start(t, Options{Listen: "127.0.0.1:0", Limits: Limits{ConnectTimeout: 2 * time.Second},
		logEvery: time.Hour})
	obs := r.observer(t)
	in := dialFrom(t, "127.0.0.1", r.b.Addr())
	if got := login(t, in, "a", "farm-a", ""); !bytes.Equal(got, accepted) {
		t.Fatalf("login got %x", got)
	}
	const idle = 20
	conns := make([]net.Conn, idle)
	for i := range conns {
		conns[i] = dialFrom(t, "127.0.0.1", r.b.Addr())
	}
	// One more sends half a CONNECT and stops: the deadline covers the
	// whole packet, not the first byte.
	half := dialFrom(t, "127.0.0.1", r.b.Addr())
	if _, err := half.Write(connectPacket("h", "farm-a", "", true)[:5]); err != nil {
		t.Fatal(err)
	}
	for i, c := range append(conns, half) {
		if got := untilClosed(t, c); len(got) != 0 {
			t.Errorf("connection %d got %x", i, got)
		}
	}
	if n := r.limited(limitConnectTimeout); n != idle+1 {
		t.Errorf("connect_timeout %v, want %d\n%s", n, idle+1, r.log.String())
	}
	logs := r.log.String()
	if n := strings.Count(logs, "no CONNECT within the connect timeout"); n != 1 {
		t.Errorf("%d log lines for %d timeouts, want 1:\n%s", n, idle+1, logs)
	}
	if strings.Contains(logs, `msg=""`) {
		t.Errorf("an empty log line:\n%s", logs)
	}
	// The idle connections, accepted after the logged-in one, have met
	// their deadline: the logged-in one is past its own, and still serves.
	if _, err := in.Write(publishPacket("fieldwatch/v1/farm-a/up", []byte("still-here"))); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the logged-in client's batch", wait, func() bool { return obs.has("fieldwatch/v1/farm-a/up still-here") })
}

// TestConnectionCaps: beyond the cap on unauthenticated connections from
// one address, on unauthenticated connections overall, and on all
// connections, a new connection is closed at once and counted; logged-in
// clients do not count as unauthenticated, and the ingestor's listener
// stays open to it.
func TestConnectionCaps(t *testing.T) {
	// An hour's connect timeout: within this test only a cap closes.
	lim := Limits{ConnectTimeout: time.Hour, MaxUnauthenticated: 4, MaxUnauthenticatedPerIP: 3}
	r := start(t, Options{Listen: "127.0.0.1:0", Limits: lim})
	for i := range 5 { // more than MaxUnauthenticated
		if got := login(t, dialFrom(t, "127.0.0.1", r.b.Addr()), fmt.Sprint("a", i), "farm-a", ""); !bytes.Equal(got, accepted) {
			t.Fatalf("login %d got %x", i, got)
		}
	}
	for range 3 {
		dialFrom(t, "127.0.0.1", r.b.Addr())
	}
	if got := untilClosed(t, dialFrom(t, "127.0.0.1", r.b.Addr())); len(got) != 0 || r.limited(limitUnauthenticatedIP) != 1 {
		t.Errorf("a 4th idle connection from one address: got %x, max_unauthenticated_per_ip %v", got, r.limited(limitUnauthenticatedIP))
	}
	dialFrom(t, "127.0.0.2", r.b.Addr())
	if got := untilClosed(t, dialFrom(t, "127.0.0.3", r.b.Addr())); len(got) != 0 || r.limited(limitUnauthenticated) != 1 {
		t.Errorf("a 5th idle connection: got %x, max_unauthenticated %v", got, r.limited(limitUnauthenticated))
	}
	if n := r.limited(limitConnectTimeout); n != 0 {
		t.Errorf("connect_timeout %v: the caps, not the deadline, closed", n)
	}

	r = start(t, Options{Listen: "127.0.0.1:0", Limits: Limits{ConnectTimeout: time.Hour, MaxConnections: 3}})
	dialFrom(t, "127.0.0.1", r.b.Addr())
	for i := range 2 {
		if got := login(t, dialFrom(t, "127.0.0.1", r.b.Addr()), fmt.Sprint("a", i), "farm-a", ""); !bytes.Equal(got, accepted) {
			t.Fatalf("login %d got %x", i, got)
		}
	}
	if got := untilClosed(t, dialFrom(t, "127.0.0.2", r.b.Addr())); len(got) != 0 || r.limited(limitConnections) != 1 {
		t.Errorf("a 4th connection: got %x, max_connections %v", got, r.limited(limitConnections))
	}
	r.observer(t) // the ingestor's listener has its own limits
}

// TestPacketSizeLimit: a 10 MiB PUBLISH from a logged-in gateway closes
// its connection (counted) and the broker goes on serving others; a batch
// of telemetry.MaxBatchBytes still passes.
func TestPacketSizeLimit(t *testing.T) {
	r := start(t, Options{Listen: "127.0.0.1:0", logEvery: time.Hour})
	obs := r.observer(t)
	lost := make(chan error, 1)
	a := testenv.MQTTConnect(t, opts(r.b.URL(), "a", "farm-a", "").
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost <- err }))
	a.Publish("fieldwatch/v1/farm-a/up", 1, false, make([]byte, 10<<20))
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("a gateway sending a 10 MiB PUBLISH kept its connection")
	}
	b := testenv.MQTTConnect(t, opts(r.b.URL(), "b", "farm-b", ""))
	publish(t, b, "fieldwatch/v1/farm-b/up", "theirs", 1)
	batch := bytes.Repeat([]byte{'x'}, telemetry.MaxBatchBytes)
	a = testenv.MQTTConnect(t, opts(r.b.URL(), "a", "farm-a", ""))
	publish(t, a, "fieldwatch/v1/farm-a/up", string(batch), 1)
	testenv.Eventually(t, "farm-b's batch and farm-a's largest", wait, func() bool {
		return obs.has("fieldwatch/v1/farm-b/up theirs") && obs.has("fieldwatch/v1/farm-a/up "+string(batch))
	})
	// Mochi counts (OnDisconnect) after it closed the connection.
	testenv.Eventually(t, "packet_too_large counted", wait, func() bool { return r.limited(limitPacketSize) == 1 })
	if n := strings.Count(r.log.String(), "packet larger than the limit"); n != 1 {
		t.Errorf("%d log lines for the large packet, want 1", n)
	}
}
