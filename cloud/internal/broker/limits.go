package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Limits bound what a client can cost the broker, most of all before it
// has authenticated. A zero field takes its default.
type Limits struct {
	// ConnectTimeout is how long a new connection has to complete its TLS
	// handshake and CONNECT; then it is closed (default 10 s).
	ConnectTimeout time.Duration
	// MaxConnections bounds the connections on the gateways' listeners,
	// authenticated or not (default 10 000). The ingestor's internal
	// listener has limits of its own, so gateways cannot lock it out.
	MaxConnections int
	// MaxUnauthenticated bounds the connections that have not completed
	// CONNECT (default 256), MaxUnauthenticatedPerIP those from one remote
	// address (default 32).
	MaxUnauthenticated      int
	MaxUnauthenticatedPerIP int
	// MaxConnectSize bounds the CONNECT packet, checked on its fixed
	// header before its body is read (default 64 KiB).
	MaxConnectSize int
	// MaxPacketSize bounds every later packet, checked by Mochi on its
	// fixed header before it allocates the body (default 1,100,000 bytes:
	// a batch of telemetry.MaxBatchBytes with its topic and header, the cap
	// of the shipped Mosquitto configuration).
	MaxPacketSize int
}

// Default limits.
const (
	DefaultConnectTimeout          = 10 * time.Second
	DefaultMaxConnections          = 10_000
	DefaultMaxUnauthenticated      = 256
	DefaultMaxUnauthenticatedPerIP = 32
	DefaultMaxConnectSize          = 64 << 10
	DefaultMaxPacketSize           = 1_100_000
)

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.ConnectTimeout <= 0 {
		l.ConnectTimeout = DefaultConnectTimeout
	}
	def(&l.MaxConnections, DefaultMaxConnections)
	def(&l.MaxUnauthenticated, DefaultMaxUnauthenticated)
	def(&l.MaxUnauthenticatedPerIP, DefaultMaxUnauthenticatedPerIP)
	def(&l.MaxConnectSize, DefaultMaxConnectSize)
	def(&l.MaxPacketSize, DefaultMaxPacketSize)
	return l
}

// Reasons a connection is closed for a limit, the values of the reason
// label of fieldwatch_broker_limit_closed_total.
const (
	limitConnections       = "max_connections"
	limitUnauthenticated   = "max_unauthenticated"
	limitUnauthenticatedIP = "max_unauthenticated_per_ip"
	limitConnectTimeout    = "connect_timeout"
	limitConnectSize       = "connect_too_large"
	limitPacketSize        = "packet_too_large"
	limitNotConnect        = "not_connect"
	limitMalformedConnect  = "malformed_connect"
)

var errConnectTooLarge = errors.New("CONNECT larger than the limit before authentication")

// gate admits connections to one listener within the limits, and closes
// those that do not complete CONNECT in time.
type gate struct {
	lim  Limits
	m    *Metrics
	warn func(key, msg string, args ...any)

	mu      sync.Mutex
	total   int
	pending int
	perIP   map[string]int
	waiting map[*gatedConn]bool // the unauthenticated, closed with the listener
}

func newGate(lim Limits, m *Metrics, warn func(key, msg string, args ...any)) *gate {
	return &gate{lim: lim, m: m, warn: warn, perIP: map[string]int{}, waiting: map[*gatedConn]bool{}}
}

// admit counts a new connection in, or closes it at once when a limit is
// reached. The connection must complete CONNECT before the deadline.
func (g *gate) admit(c net.Conn) (*gatedConn, bool) {
	ip := remoteIP(c)
	g.mu.Lock()
	reason := ""
	switch {
	case g.total >= g.lim.MaxConnections:
		reason = limitConnections
	case g.pending >= g.lim.MaxUnauthenticated:
		reason = limitUnauthenticated
	case g.perIP[ip] >= g.lim.MaxUnauthenticatedPerIP:
		reason = limitUnauthenticatedIP
	default:
		g.total++
		g.pending++
		g.perIP[ip]++
	}
	var gc *gatedConn
	if reason == "" {
		gc = &gatedConn{Conn: c, raw: c, g: g, ip: ip}
		g.waiting[gc] = true
	}
	g.mu.Unlock()
	if reason != "" {
		g.m.limitClosed.WithLabelValues(reason).Inc()
		key := reason
		if reason == limitUnauthenticatedIP {
			key += ":" + ip
		}
		g.warn("limit:"+key, "connection closed at once: too many connections", "reason", reason, "remote", ip,
			"max_connections", g.lim.MaxConnections, "max_unauthenticated", g.lim.MaxUnauthenticated,
			"max_unauthenticated_per_ip", g.lim.MaxUnauthenticatedPerIP)
		c.Close()
		return nil, false
	}
	_ = c.SetDeadline(time.Now().Add(g.lim.ConnectTimeout)) // Mochi sets the keepalive's once authenticated
	return gc, true
}

// closeWaiting closes the connections that have not authenticated: Mochi
// closes its clients when it stops, not connections still before CONNECT,
// and waits for them.
func (g *gate) closeWaiting() {
	g.mu.Lock()
	cs := make([]*gatedConn, 0, len(g.waiting))
	for c := range g.waiting {
		cs = append(cs, c)
	}
	g.mu.Unlock()
	for _, c := range cs {
		c.raw.Close()
	}
}

func remoteIP(c net.Conn) string {
	a := c.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h
	}
	return a
}

// gatedConn is a connection the gate admitted: it checks the first
// packet's fixed header as Mochi reads it, and releases its place in the
// counts when it authenticates and when it closes.
type gatedConn struct {
	net.Conn          // what Mochi reads: raw, or TLS over raw
	raw      net.Conn // the TCP connection
	g        *gate
	ip       string

	header    []byte // the first fixed header, until it is complete
	headerOK  bool
	mu        sync.Mutex
	authed    bool
	closed    bool
	reason    string // the limit that closed it, or "logged": already counted and logged
	closeOnce sync.Once
}

// gated finds the gatedConn under a client's connection.
func gated(c net.Conn) *gatedConn {
	gc, _ := c.(*gatedConn)
	return gc
}

// Read passes bytes through, checking the first packet: a CONNECT
// declaring more than MaxConnectSize is refused before Mochi allocates it.
func (c *gatedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.headerOK {
		if e := c.scan(p[:n]); e != nil {
			c.Close()
			return 0, e
		}
	}
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() && !c.isAuthed() {
		// Counted here, before Mochi closes the connection.
		c.refuse(limitConnectTimeout, "connection closed: no CONNECT within the connect timeout",
			"timeout", c.g.lim.ConnectTimeout)
	}
	return n, err
}

func (c *gatedConn) isAuthed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authed
}

// scan reads the fixed header of the first packet from the bytes in b.
func (c *gatedConn) scan(b []byte) error {
	for _, x := range b {
		c.header = append(c.header, x)
		if len(c.header) == 1 {
			if x != 0x10 {
				c.refuse(limitNotConnect, "connection closed: the first packet is not a CONNECT", "type", x>>4)
				return fmt.Errorf("first packet type %d, not CONNECT", x>>4)
			}
			continue
		}
		if x&0x80 != 0 {
			if len(c.header) == 5 {
				c.refuse(limitMalformedConnect, "connection closed: malformed CONNECT length")
				return errors.New("malformed remaining length")
			}
			continue
		}
		size := len(c.header)
		mul := 1
		for _, d := range c.header[1:] {
			size += int(d&0x7f) * mul
			mul *= 128
		}
		c.headerOK = true
		if size > c.g.lim.MaxConnectSize {
			c.refuse(limitConnectSize, "connection closed: CONNECT larger than the limit before authentication",
				"size", size, "max", c.g.lim.MaxConnectSize)
			return errConnectTooLarge
		}
		return nil
	}
	return nil
}

// refuse counts and logs why the gate closes the connection.
func (c *gatedConn) refuse(reason, msg string, args ...any) {
	c.mu.Lock()
	first := c.reason == ""
	if first {
		c.reason = reason
	}
	c.mu.Unlock()
	if !first {
		return
	}
	c.g.m.limitClosed.WithLabelValues(reason).Inc()
	c.g.warn("limit:"+reason+":"+c.ip, msg, append([]any{"reason", reason, "remote", c.raw.RemoteAddr().String()}, args...)...)
}

// logged notes that the refusal was counted and logged already.
func (c *gatedConn) logged() {
	c.mu.Lock()
	if c.reason == "" {
		c.reason = "logged"
	}
	c.mu.Unlock()
}

// authenticated releases the connection's place among the unauthenticated.
func (c *gatedConn) authenticated() {
	c.mu.Lock()
	release := !c.authed && !c.closed
	c.authed = true
	c.mu.Unlock()
	if release {
		c.g.mu.Lock()
		c.g.release(c, false)
		c.g.mu.Unlock()
	}
}

// Close closes the connection and releases its places.
func (c *gatedConn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		pending := !c.authed
		c.closed = true
		c.mu.Unlock()
		c.g.mu.Lock()
		if pending {
			c.g.release(c, false)
		}
		c.g.release(c, true)
		c.g.mu.Unlock()
	})
	return c.Conn.Close()
}

// release gives back a place among the unauthenticated, or (total) among
// all connections; g.mu is held.
func (g *gate) release(c *gatedConn, total bool) {
	if total {
		g.total--
		return
	}
	g.pending--
	delete(g.waiting, c)
	if g.perIP[c.ip]--; g.perIP[c.ip] <= 0 {
		delete(g.perIP, c.ip)
	}
}

// ended is told how Mochi's handling of the connection ended (err from
// EstablishConnection), and logs, throttled, what nobody logged yet about
// a connection that never authenticated. Mochi's own listener would log
// an empty warning line for each.
func (c *gatedConn) ended(err error, listener string) {
	c.Close()
	c.mu.Lock()
	authed, reason := c.authed, c.reason
	c.mu.Unlock()
	if authed || reason != "" || err == nil {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.refuse(limitConnectTimeout, "connection closed: no CONNECT within the connect timeout",
			"timeout", c.g.lim.ConnectTimeout, "listener", listener)
		return
	}
	if errors.Is(err, io.EOF) && len(c.header) == 0 {
		return // opened and closed without a byte: a port check
	}
	c.g.warn("preauth:"+c.ip, "connection closed before it completed CONNECT", "remote", c.raw.RemoteAddr().String(),
		"listener", listener, "err", err)
}
