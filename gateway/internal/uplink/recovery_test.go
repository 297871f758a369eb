package uplink

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestRefusalResentOnHint: the cloud refuses a batch with a retry hint; the
// gateway sends it again after the hint — its ack timeout is an hour, so
// only the hint can bring the batch back — and the state it announces
// lists the optional acks it understands.
func TestRefusalResentOnHint(t *testing.T) {
	m := testenv.StartMosquitto(t)
	c := newCloud(t, m.URL)
	refused := 0
	c.setPolicy(func(b *telemetry.Batch) bool {
		if refused == 0 { // under c.mu
			refused++
			go c.publish(b.Gateway, telemetry.Ack{Stream: b.Stream, First: b.FirstSeq, Last: b.LastSeq(), RetryMS: 50})
			return false
		}
		return true
	})
	r := startUplink(t, m.URL, func(u *config.Uplink) { u.AckTimeout = time.Hour })
	r.append(t, 30)
	testenv.Eventually(t, "the batch stored after its refusal", wait, func() bool { return r.buf.Stats().Readings == 0 })
	if n, to := testutil.ToFloat64(r.up.m.refusals), testutil.ToFloat64(r.up.m.ackTimeouts); n != 1 || to != 0 {
		t.Fatalf("%v refusals, %v ack timeouts; want 1 and 0", n, to)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.states) == 0 || !c.states[0].Accepting(telemetry.AckRetry) || !c.states[0].Accepting(telemetry.AckOnline) {
		t.Fatalf("states %+v; want accepts listing retry_ms and online", c.states)
	}
}

// TestOnlineNoticeResends: batches published while no cloud listened are
// lost; the cloud's online notice, when it subscribes, brings them back at
// once rather than after the ack timeout (an hour here).
func TestOnlineNoticeResends(t *testing.T) {
	m := testenv.StartMosquitto(t)
	r := startUplink(t, m.URL, func(u *config.Uplink) { u.AckTimeout = time.Hour })
	testenv.Eventually(t, "connected", wait, r.up.Connected)
	r.append(t, 30) // published to no one
	testenv.Eventually(t, "the batch sent", wait, func() bool {
		return testutil.ToFloat64(r.up.m.batches.WithLabelValues("live")) > 0
	})
	c := newCloud(t, m.URL)
	c.publish("gw1", telemetry.Ack{Online: true})
	testenv.Eventually(t, "the batch sent again and stored", wait, func() bool { return r.buf.Stats().Readings == 0 })
	if n := testutil.ToFloat64(r.up.m.onlineNotices); n != 1 {
		t.Fatalf("%v online notices counted", n)
	}
}

// TestStaleRefusalIgnored: a refusal of a batch that is not in flight
// (sent before a reconnect, or made up) changes nothing.
func TestStaleRefusalIgnored(t *testing.T) {
	m := testenv.StartMosquitto(t)
	c := newCloud(t, m.URL)
	r := startUplink(t, m.URL, nil)
	r.append(t, 30)
	testenv.Eventually(t, "delivered", wait, func() bool { return r.buf.Stats().Readings == 0 })
	c.publish("gw1", telemetry.Ack{Stream: r.buf.Stream(), First: 1, Last: 30, RetryMS: 60_000})
	c.publish("gw1", telemetry.Ack{Online: true}) // after the refusal, in order: both handled once it is
	testenv.Eventually(t, "the notice handled", wait, func() bool { return testutil.ToFloat64(r.up.m.onlineNotices) == 1 })
	r.append(t, 30) // not held back by the stale refusal
	testenv.Eventually(t, "delivered after the stale refusal", wait, func() bool { return r.buf.Stats().Readings == 0 })
	if n := testutil.ToFloat64(r.up.m.refusals); n != 0 {
		t.Fatalf("%v refusals counted for a batch not in flight", n)
	}
}

// TestUnreached: what counts as an attempt that cost no broker anything.
func TestUnreached(t *testing.T) {
	_, refused := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)))
	if refused == nil || !unreached(refused) {
		t.Fatalf("dial to a closed port: %v; want unreached", refused)
	}
	wrapped := errors.Join(packets.ErrorNetworkError, refused) // as paho wraps it
	if !unreached(wrapped) {
		t.Errorf("%v not unreached", wrapped)
	}
	for _, err := range []error{packets.ErrorRefusedNotAuthorised, packets.ErrorRefusedServerUnavailable,
		&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, errors.New("EOF")} {
		if unreached(err) {
			t.Errorf("%v taken for unreached: a broker took the connection", err)
		}
	}
}

// TestReconnectSchedule: against nothing listening, every wait is within a
// second (the broker is back within one); against a listener that takes the
// connection and closes it — a broker that cannot take more — each attempt
// is a strike and the waits grow.
func TestReconnectSchedule(t *testing.T) {
	waitsWithin := func(r *rig, most float64) (within, all uint64) {
		mf, err := r.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range mf {
			if f.GetName() != "fieldwatch_gateway_uplink_reconnect_wait_seconds" {
				continue
			}
			h := f.GetMetric()[0].GetHistogram()
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() == most {
					within = b.GetCumulativeCount()
				}
			}
			all = h.GetSampleCount()
		}
		return within, all
	}
	t.Run("nothing listening", func(t *testing.T) {
		r := startUplink(t, fmt.Sprintf("tcp://127.0.0.1:%d", testenv.FreePort(t)), nil)
		testenv.Eventually(t, "three attempts", wait, func() bool { return testutil.ToFloat64(r.up.m.connectFailures) >= 3 })
		if within, all := waitsWithin(r, 1); all == 0 || within != all {
			t.Fatalf("%d of %d waits within a second; want all", within, all)
		}
	})
	t.Run("broker takes and drops", func(t *testing.T) {
		p := testenv.StartProxy(t, "127.0.0.1:1") // never dialled: every connection is closed once taken
		p.Refuse(true)
		r := startUplink(t, p.URL(), nil)
		testenv.Eventually(t, "two attempts", wait, func() bool { return testutil.ToFloat64(r.up.m.connectFailures) >= 2 })
		if within, all := waitsWithin(r, 1); all == 0 || within != 0 {
			t.Fatalf("%d of %d waits within a second; want none: each attempt is a strike", within, all)
		}
	})
}
