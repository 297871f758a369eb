package uplink

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// conn supervises the MQTT connection: it connects, trying the brokers in
// order (failover), waits a jittered delay after each failure or loss, and
// replaces a connection the uplink finds stuck. The uplink hears of
// changes through changed and never blocks on the network here.
//
// The schedule (docs/gateway.md, docs/decisions.md §40): after the loss
// of a connection that had lasted StableAfter, and after an attempt no
// broker even took the TCP connection of (nothing listening, no route: it
// cost no broker anything), the next attempt comes after a wait drawn
// between 0.5 and 1 s, so a gateway is back within a second of its broker.
// An attempt a broker took and then failed (TLS, CONNACK refused, no
// CONNACK in connect_timeout: a broker overloaded by a fleet reconnecting
// at once, or refusing this gateway), and a connection lost within
// StableAfter of being made, are strikes: each doubles the ceiling of the
// wait, up to reconnect_max, so the gateways a broker cannot take spread
// out and back off.
type conn struct {
	u       *Uplink
	client  mqtt.Client
	changed chan struct{} // a connection came up or went down

	mu      sync.Mutex
	up      bool
	lost    chan struct{} // closed when the current connection is lost
	strikes int           // attempts in a row a broker took and failed, and short-lived connections
	upSince time.Time

	// Of the connection attempt under way (paho's notifications): brokers
	// tried, and those whose TCP connection was never made.
	tried, unreached atomic.Int32
}

// StableAfter is how long a connection must have lasted for its loss not
// to count as a strike: a broker that takes the connection and then drops
// it is as costly as one that refuses it.
const StableAfter = 10 * time.Second

func newConn(u *Uplink) *conn {
	c := &conn{u: u, changed: make(chan struct{}, 1)}
	c.client = mqtt.NewClient(u.options(c))
	return c
}

func (c *conn) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// run keeps a connection up until ctx is done.
func (c *conn) run(ctx context.Context) {
	for ctx.Err() == nil {
		// paho tries each broker in turn, each bounded by connect_timeout.
		tok := c.client.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return
		}
		if err := tok.Error(); err != nil {
			c.u.m.connectFailures.Inc()
			unreached := c.tried.Load() > 0 && c.unreached.Load() == c.tried.Load()
			c.u.log.Warn("cannot connect to any broker", "brokers", c.u.o.Config.Brokers, "err", err,
				"broker_reached", !unreached)
			if !c.backoff(ctx, !unreached) {
				return
			}
			continue
		}
		c.mu.Lock()
		c.up, c.upSince = true, time.Now()
		lost := make(chan struct{})
		c.lost = lost
		c.mu.Unlock()
		c.u.connected.Store(true)
		c.signal()
		select {
		case <-ctx.Done():
			return
		case <-lost:
		}
		c.u.connected.Store(false)
		c.signal()
		c.mu.Lock()
		short := time.Since(c.upSince) < StableAfter
		c.mu.Unlock()
		if !c.backoff(ctx, short) {
			return
		}
	}
}

// backoff waits before the next attempt (the schedule above); strike says
// whether the last attempt or connection counts as one. Anything else ends
// a run of strikes: a broker that is not there, or a connection that
// lasted, tells nothing of a broker's load.
func (c *conn) backoff(ctx context.Context, strike bool) bool {
	c.mu.Lock()
	if strike {
		c.strikes++
	} else {
		c.strikes = 0
	}
	n := c.strikes + 1
	c.mu.Unlock()
	d := jittered(n, c.u.o.Config.ReconnectMax, rand.Float64())
	c.u.m.reconnectWaits.Observe(d.Seconds())
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// jittered is the wait with n − 1 strikes (n = 1, 2, …): between half and
// all of a ceiling that doubles from 1s up to most; r is uniform in [0, 1).
func jittered(n int, most time.Duration, r float64) time.Duration {
	ceiling := min(time.Second<<min(n-1, 20), most)
	return ceiling/2 + time.Duration(r*float64(ceiling/2))
}

// unreached reports whether err says the TCP connection to a broker was
// never made (refused: nothing listening; no route; the dial timed out; the
// name did not resolve): an attempt that cost the broker nothing.
func unreached(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// dropped ends the current connection: paho lost it, or the uplink found
// it stuck and closed it.
func (c *conn) dropped() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up {
		c.up = false
		close(c.lost)
	}
}

// replace closes a stuck connection; run connects again.
func (c *conn) replace() {
	c.client.Disconnect(0)
	c.dropped()
}

// options builds the paho options: no reconnection of its own (conn does
// it), clean sessions, the offline last will.
func (u *Uplink) options(c *conn) *mqtt.ClientOptions {
	cfg := u.o.Config
	opts := mqtt.NewClientOptions()
	for _, b := range cfg.Brokers {
		opts.AddBroker(b)
	}
	id := cfg.ClientID
	if id == "" {
		id = "fieldwatch-" + u.o.Gateway
	}
	offline, _ := telemetry.EncodeState(telemetry.State{State: telemetry.StateOffline, Site: u.o.Site})
	opts.SetClientID(id).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(true).
		// MQTT 3.1.1 only: paho would otherwise try 3.1 after a refused
		// CONNECT, which NATS's MQTT listener and others refuse outright.
		SetProtocolVersion(4).
		SetKeepAlive(cfg.Keepalive).
		SetPingTimeout(cfg.Keepalive/2).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetWriteTimeout(10*time.Second).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetBinaryWill(telemetry.StateTopic(u.o.Gateway), offline, 1, true).
		SetTLSConfig(tlsConfig(cfg)).
		SetConnectionNotificationHandler(func(_ mqtt.Client, n mqtt.ConnectionNotification) {
			// Called in the attempt's goroutine, before Connect's token
			// completes.
			switch n := n.(type) {
			case mqtt.ConnectionNotificationConnecting:
				c.tried.Store(0)
				c.unreached.Store(0)
			case mqtt.ConnectionNotificationBroker:
				c.tried.Add(1)
			case mqtt.ConnectionNotificationBrokerFailed:
				if unreached(n.Reason) {
					c.unreached.Add(1)
				}
			}
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			u.log.Warn("connection to broker lost", "err", err)
			c.dropped()
		})
	return opts
}
