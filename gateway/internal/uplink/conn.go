package uplink

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// conn supervises the MQTT connection: it connects, trying the brokers in
// order (failover), waits a jittered, growing delay after each failure or
// loss, and replaces a connection the uplink finds stuck. The uplink hears
// of changes through changed and never blocks on the network here.
type conn struct {
	u       *Uplink
	client  mqtt.Client
	changed chan struct{} // a connection came up or went down

	mu      sync.Mutex
	up      bool
	lost    chan struct{} // closed when the current connection is lost
	attempt int
}

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
			c.u.log.Warn("cannot connect to any broker", "brokers", c.u.o.Config.Brokers, "err", err)
			if !c.backoff(ctx) {
				return
			}
			continue
		}
		c.mu.Lock()
		c.up, c.attempt = true, 0
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
		if !c.backoff(ctx) {
			return
		}
	}
}

// backoff waits before the next attempt: full jitter over a delay that
// doubles from 1s up to reconnect_max, so a fleet of gateways does not
// reconnect in lockstep after a broker restart.
func (c *conn) backoff(ctx context.Context) bool {
	c.mu.Lock()
	c.attempt++
	n := c.attempt
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

// jittered is the wait before attempt n (1, 2, …): between half and all of
// a ceiling that doubles from 1s up to most; r is uniform in [0, 1).
func jittered(n int, most time.Duration, r float64) time.Duration {
	ceiling := min(time.Second<<min(n-1, 20), most)
	return ceiling/2 + time.Duration(r*float64(ceiling/2))
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
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			u.log.Warn("connection to broker lost", "err", err)
			c.dropped()
		})
	return opts
}
