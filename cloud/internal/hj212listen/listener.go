// Package hj212listen is the cloud as an HJ 212 platform (上位机): a TCP
// listener (optionally TLS) that data loggers (数采仪) report to.
//
// Each connection has a goroutine of its own (stationserver) that reads
// frames with the codec's stream reader (protocols/hj212) under a read
// deadline, so a slow, silent or hostile peer holds only its own
// connection. A frame is checked
// by the codec, then its MN against the allow-list and its PW against the
// logger's; every refusal is counted by kind and logged (throttled), and the
// reader goes on with the next frame. Real-time (2011), minute (2051), hour
// (2061) and day (2031) data become readings of the logger's station and
// go through the MQTT batches' path (ingest.Submit: registry, early
// warnings, store with a commit record, so a re-sent frame is neither
// written nor judged twice); the frame is answered (9014) only once it is
// stored, and only when its Flag asks. A logger back after an outage is
// asked for the minute and hour data it could not send (补传).
//
// docs/standards/hj212.md ("Fieldwatch as platform") describes the mapping
// and docs/decisions.md why.
package hj212listen

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/ingest"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/stationserver"
	"github.com/fieldwatch/fieldwatch/internal/throttle"
	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Submitter takes readings through the cloud's ingest path (ingest.Ingestor).
type Submitter interface {
	Submit(ctx context.Context, b *telemetry.Batch) (ingest.Submitted, error)
}

// Options start a listener.
type Options struct {
	Config   *Config // validated and loaded
	Ingest   Submitter
	Registry *registry.Registry
	Log      *slog.Logger
	Metrics  *Metrics
	// Now is the clock (default time.Now); AfterFunc runs f after d and
	// returns what stops it (default time.AfterFunc).
	Now       func() time.Time
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
}

// Times the listener gives a peer.
const (
	writeTimeout = 10 * time.Second
	// storeSlots bounds the frames written to the store at once; a logger
	// waiting for a slot stops reading its socket (its own backpressure).
	storeSlots = 16
)

// Listener accepts data loggers until closed.
type Listener struct {
	o       Options
	cfg     *Config
	log     *slog.Logger
	m       *Metrics
	ln      net.Listener
	loggers map[string]*logger // by MN
	slots   chan struct{}
	thr     *throttle.Throttle
	cancel  context.CancelFunc
	done    chan struct{} // closed when the server has stopped

	mu      sync.Mutex
	pending int
	perIP   map[string]int
	current map[string]*conn    // each logger's newest authenticated connection
	online  map[string]int      // station → loggers connected
	leaving map[string]*leaving // station → its offline mark, pending
	closing bool
}

// logger is a configured logger with its factor table and what the
// listener remembers of its data.
type logger struct {
	cfg     *Logger
	factors map[string]Factor
	mu      sync.Mutex
	last    map[string]time.Time     // CN → newest DataTime stored
	gap     map[string]time.Duration // CN → smallest step seen between DataTimes
}

// Start listens on cfg.Listen and serves until ctx is done or Close: one
// goroutine per connection (stationserver), at most max_connections.
func Start(ctx context.Context, o Options) (*Listener, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AfterFunc == nil {
		o.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	cfg := o.Config
	l := &Listener{o: o, cfg: cfg, log: o.Log.With("component", "hj212"), m: o.Metrics,
		loggers: map[string]*logger{}, slots: make(chan struct{}, storeSlots), thr: throttle.New(10 * time.Second),
		perIP: map[string]int{}, current: map[string]*conn{}, online: map[string]int{}, leaving: map[string]*leaving{},
		done: make(chan struct{})}
	for i := range cfg.Loggers {
		lc := &cfg.Loggers[i]
		fs := make(map[string]Factor, len(DefaultFactors)+len(cfg.Factors)+len(lc.Factors))
		for _, m := range []map[string]Factor{DefaultFactors, cfg.Factors, lc.Factors} {
			for k, v := range m {
				fs[k] = v
			}
		}
		if lc.pw == "" {
			lc.pw = lc.PW
		}
		l.loggers[lc.MN] = &logger{cfg: lc, factors: fs, last: map[string]time.Time{}, gap: map[string]time.Duration{}}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("hj212.listen: cannot listen on %s: %w", cfg.Listen, err)
	}
	if cfg.ServerTLS != nil {
		ln = tls.NewListener(ln, cfg.ServerTLS)
	}
	l.ln = ln
	ctx, l.cancel = context.WithCancel(ctx)
	srv := &stationserver.Server{Proto: "hj212", MaxConns: cfg.maxConnections(), Handle: l.handleConn, Log: l.log,
		Metrics: o.Metrics.server}
	go func() {
		defer close(l.done)
		srv.Serve(ctx, ln)
	}()
	l.log.Info("HJ 212 platform listening", "addr", ln.Addr().String(), "tls", cfg.ServerTLS != nil,
		"loggers", len(cfg.Loggers))
	return l, nil
}

// Addr is where the listener listens.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting, closes every connection and waits for their
// goroutines; the stations of the loggers that were connected, or left
// within offline_after, are offline.
func (l *Listener) Close() {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	l.cancel()
	<-l.done
	l.mu.Lock()
	var sts []string
	for st, lv := range l.leaving {
		if lv.stop() {
			sts = append(sts, st)
		}
	}
	clear(l.leaving)
	for st := range l.online {
		sts = append(sts, st)
	}
	clear(l.online)
	l.mu.Unlock()
	for _, st := range sts {
		l.offline(st)
	}
}

// handleConn serves one connection the server accepted: closed at once
// when it is over the bounds on connections without a good frame yet.
func (l *Listener) handleConn(ctx context.Context, nc net.Conn) {
	c := l.admit(nc)
	if c == nil {
		l.m.pendingRefused.Inc()
		if ok, n := l.thr.Allow("pending"); ok {
			l.log.Warn("connection closed: too many connections without a good frame yet", "remote", nc.RemoteAddr().String(),
				"similar_suppressed", n)
		}
		return
	}
	c.serve(ctx)
}

// admit registers a new connection, pending until its first good frame;
// nil when it is over a bound.
func (l *Listener) admit(nc net.Conn) *conn {
	ip := hostOf(nc.RemoteAddr())
	pendingAll, pendingPerAddress := l.cfg.maxPending()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending >= pendingAll || l.perIP[ip] >= pendingPerAddress {
		return nil
	}
	c := &conn{l: l, nc: nc, ip: ip, pending: true, sessions: map[string]*session{}, since: l.o.Now()}
	l.pending++
	l.perIP[ip]++
	return c
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// conn is one connection; its goroutine alone reads and writes it.
type conn struct {
	l        *Listener
	nc       net.Conn
	ip       string
	since    time.Time
	pending  bool                // no good frame yet (guarded by l.mu)
	sessions map[string]*session // by MN: the loggers heard on it
}

// session is a logger heard on a connection.
type session struct {
	lg  *logger
	st  string // the ST of its uploads, for requests
	ver int    // its Flag version
	// noFlag: its frames have no Flag (HJ/T 212-2005), nor do requests to it
	noFlag bool
	seen   map[string]bool // CNs of data it sent on this connection
	// asked is the QN of the history request in flight ("" none).
	asked string
}

func (c *conn) serve(ctx context.Context) {
	defer c.close()
	l := c.l
	rd := hj212.NewReader(c.nc)
	idle := l.cfg.idleTimeout()
	lastGood := c.since
	for {
		// Only a good frame moves the deadline: a peer that trickles bytes
		// or sends garbage is cut off after idle_timeout all the same.
		c.nc.SetReadDeadline(lastGood.Add(idle))
		data, err := rd.Next()
		if err != nil {
			if k := hj212.Kind(err); k != "" {
				c.refused(k, "", err)
				continue
			}
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					l.log.Debug("connection idle; closed", "remote", c.nc.RemoteAddr().String(), "idle_timeout", idle)
				}
			}
			return
		}
		p, err := hj212.DecodePacket(data)
		if err != nil {
			c.refused(hj212.Kind(err), "", err)
			continue
		}
		if c.handle(ctx, p) {
			lastGood = l.o.Now()
		}
	}
}

// refused counts and logs (throttled) refused input.
func (c *conn) refused(kind, mn string, err error) {
	c.l.m.refused.Refuse(kind, "HJ 212 frame refused", "remote", c.nc.RemoteAddr().String(), "mn", mn, "err", err)
}

// handle takes one decoded frame; it reports whether the frame was good
// (authenticated, and stored when it carries data).
func (c *conn) handle(ctx context.Context, p hj212.Packet) bool {
	l := c.l
	lg := l.loggers[p.MN]
	if lg == nil {
		c.refused(KindUnknownMN, p.MN, fmt.Errorf("MN %s is not in hj212.loggers", p.MN))
		return false
	}
	if subtle.ConstantTimeCompare([]byte(p.PW), []byte(lg.cfg.pw)) != 1 {
		c.refused(KindWrongPW, p.MN, fmt.Errorf("wrong PW for MN %s", p.MN))
		return false
	}
	s := c.session(lg, p)
	switch p.CN {
	case hj212.CNRealtime, hj212.CNMinute, hj212.CNHour, hj212.CNDay:
		return c.data(ctx, s, p)
	case hj212.CNHeartbeat:
		l.m.frames.WithLabelValues(classHeartbeat).Inc()
		c.answer(p, hj212.CNNoticeResponse)
	case hj212.CNTimeCalibRequest:
		l.m.frames.WithLabelValues(classNotice).Inc()
		c.answer(p, hj212.CNNoticeResponse)
	case hj212.CNRequestResponse, hj212.CNExecResult, hj212.CNNoticeResponse, hj212.CNDataResponse:
		l.m.frames.WithLabelValues(classAnswer).Inc()
		c.answered(s, p)
	default:
		// Another upload (run states 2021, run times 2041, start-up 2081,
		// instrument information 3020, …): not stored; answered as data
		// when it asks.
		l.m.frames.WithLabelValues(classOther).Inc()
		if ok, n := l.thr.Allow("other:" + p.CN); ok {
			l.log.Info("HJ 212 command not stored", "cn", p.CN, "mn", p.MN, "similar_suppressed", n)
		}
		if p.CN[0] == '2' || p.CN[0] == '3' {
			c.answer(p, hj212.CNDataResponse)
		}
	}
	return true
}

// session returns the logger's session on this connection, making this
// connection the logger's current one (an older one is closed: a logger
// that reconnects before its old connection timed out) and the station
// online.
func (c *conn) session(lg *logger, p hj212.Packet) *session {
	s := c.sessions[p.MN]
	if s == nil {
		s = &session{lg: lg, seen: map[string]bool{}}
		c.sessions[p.MN] = s
		c.l.connected(c, lg)
	}
	if p.CN[0] == '2' {
		s.st = p.ST // the system code of its data, which requests to it carry
	}
	s.noFlag = p.NoFlag
	if !p.NoFlag {
		s.ver = p.Flag.Version()
	}
	return s
}

// connected marks c as lg's connection: c is no longer pending, an older
// connection of lg is closed, its station is online.
func (l *Listener) connected(c *conn, lg *logger) {
	l.mu.Lock()
	if c.pending {
		c.pending = false
		l.pending--
		if l.perIP[c.ip]--; l.perIP[c.ip] <= 0 {
			delete(l.perIP, c.ip)
		}
	}
	old := l.current[lg.cfg.MN]
	l.current[lg.cfg.MN] = c
	st := lg.cfg.Station
	if old == nil {
		l.online[st]++
	}
	if lv := l.leaving[st]; lv != nil {
		lv.stop() // back in time: the station never went offline
		delete(l.leaving, st)
	}
	l.mu.Unlock()
	if old != nil && old != c {
		l.log.Info("data logger reconnected; its older connection closed", "mn", lg.cfg.MN, "station", st,
			"remote", c.nc.RemoteAddr().String(), "old_remote", old.nc.RemoteAddr().String())
		old.nc.Close()
	}
	l.log.Info("data logger connected", "mn", lg.cfg.MN, "station", st, "remote", c.nc.RemoteAddr().String())
	if old == nil {
		l.o.Registry.ObserveState(st, telemetry.State{State: telemetry.StateOnline, Time: l.o.Now(), Site: lg.cfg.Site,
			Name: lg.cfg.Name, SiteName: lg.cfg.SiteName, Location: lg.cfg.Location, Version: "hj212", Devices: l.devicesOf(st)}, false)
	}
}

// devicesOf lists the devices of a station's loggers.
func (l *Listener) devicesOf(station string) []telemetry.DeviceState {
	var ds []telemetry.DeviceState
	for i := range l.cfg.Loggers {
		if lc := &l.cfg.Loggers[i]; lc.Station == station {
			ds = append(ds, telemetry.DeviceState{ID: lc.device(), Profile: "hj212"})
		}
	}
	return ds
}

// close ends the connection: its loggers whose current connection it is
// are gone, and a station with no logger left is offline.
func (c *conn) close() {
	c.nc.Close()
	l := c.l
	var offline []string
	l.mu.Lock()
	if c.pending {
		l.pending--
		if l.perIP[c.ip]--; l.perIP[c.ip] <= 0 {
			delete(l.perIP, c.ip)
		}
	}
	for mn, s := range c.sessions {
		if l.current[mn] != c {
			continue
		}
		delete(l.current, mn)
		st := s.lg.cfg.Station
		if l.online[st]--; l.online[st] <= 0 {
			delete(l.online, st)
			offline = append(offline, st)
		}
	}
	l.mu.Unlock()
	for _, st := range offline {
		l.log.Info("data logger disconnected", "station", st, "remote", c.nc.RemoteAddr().String(),
			"offline_unless_back_within", l.cfg.offlineAfter())
		l.goingOffline(st)
	}
}

// goingOffline marks station st offline once offline_after has passed
// without a logger of it connected: a logger that reconnects at once (a
// dropped mobile link, a logger that connects for each report) does not
// make its station flap.
func (l *Listener) goingOffline(st string) {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		l.offline(st) // the listener stops: no logger can come back
		return
	}
	if old := l.leaving[st]; old != nil {
		old.stop()
	}
	lv := &leaving{}
	lv.stop = l.o.AfterFunc(l.cfg.offlineAfter(), func() {
		l.mu.Lock()
		if l.leaving[st] != lv || l.online[st] > 0 {
			l.mu.Unlock()
			return
		}
		delete(l.leaving, st)
		l.mu.Unlock()
		l.offline(st)
	})
	l.leaving[st] = lv
	l.mu.Unlock()
}

// leaving is a station's pending offline mark.
type leaving struct{ stop func() bool }

func (l *Listener) offline(st string) {
	l.log.Info("station offline: no data logger of it connected", "station", st)
	l.o.Registry.ObserveState(st, telemetry.State{State: telemetry.StateOffline, Time: l.o.Now()}, false)
}

// data stores a data upload and answers it; false when it was refused or
// could not be stored.
func (c *conn) data(ctx context.Context, s *session, p hj212.Packet) bool {
	l := c.l
	lg := s.lg
	u, err := mapUpload(p.CN, p.CP, lg.cfg.device(), lg.factor, hj212.Beijing)
	if err != nil {
		var me *mapError
		if errors.As(err, &me) {
			c.refused(me.kind, p.MN, err)
		} else {
			l.log.Error("BUG: mapping an upload", "err", err)
		}
		return false
	}
	if len(u.unmapped) > 0 {
		l.m.unmapped.Add(float64(len(u.unmapped)))
		if ok, n := l.thr.Allow("unmapped:" + p.MN); ok {
			l.log.Warn("factor codes without a metric stored under their code; map them in hj212.factors", "mn", p.MN,
				"codes", u.unmapped, "similar_suppressed", n)
		}
	}
	if len(u.readings) > 0 {
		l.recall(lg, p.CN)
		b := &telemetry.Batch{Gateway: lg.cfg.Station, Site: lg.cfg.Site, Stream: "hj212-" + lg.cfg.MN + "-" + p.CN,
			FirstSeq: frameSeq(u.dataTime, p.CP), Readings: u.readings, Backlog: lg.older(p.CN, u.dataTime)}
		select {
		case l.slots <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		res, err := l.o.Ingest.Submit(ctx, b)
		<-l.slots
		dup := res == ingest.Duplicate
		if err != nil {
			l.m.storeErrors.Inc()
			if ok, n := l.thr.Allow("store"); ok {
				l.log.Error("cannot store HJ 212 data; not answering, the logger sends it again", "mn", p.MN,
					"cn", p.CN, "data_time", u.dataTime, "err", err, "similar_suppressed", n)
			}
			return false
		}
		if dup {
			l.m.duplicates.Inc()
		} else {
			l.m.readings.Add(float64(len(u.readings)))
		}
	}
	l.m.frames.WithLabelValues(periods[p.CN].name).Inc()
	c.answer(p, hj212.CNDataResponse)
	c.history(s, p.CN, u.dataTime)
	return true
}

// Numbering of a logger's frames in the stream of one CN: a frame's readings
// are numbered from its DataTime and a 16-bit hash of its data area (CP), so
// a frame sent again (a lost 9014, a history upload of what arrived) has the
// same numbers whatever its QN, while two different frames of one DataTime
// — one per instrument, the parts of a split message, a reading that came
// after its second's frame had gone — have different ones and are each
// stored. (DataTime and part number alone made a second frame of the same
// DataTime look like a resend: answered, never stored.) Two different data
// areas of one DataTime share a hash once in 65 536. The hash is CRC-32's
// low half, not the frame's CRC, which takes at most 256 values. A data
// segment of at most 1024 bytes holds fewer than 1<<indexBits values (each
// field takes at least 5 bytes: "a-b=" and a separator).
const indexBits = 8

func frameSeq(dataTime time.Time, cp hj212.CP) uint64 {
	area, _ := cp.Append(nil) // a CP that was parsed writes back
	return uint64(dataTime.Unix())<<(16+indexBits) | uint64(crc32.ChecksumIEEE(area)&0xFFFF)<<indexBits | 1
}

// factor is the logger's factor mapping.
func (lg *logger) factor(code string) (Factor, bool) {
	f, ok := lg.factors[code]
	return f, ok
}

// answer sends the answer cn (9013 or 9014) to p when p's Flag asks for one:
// the same QN, ST 91, Flag of p's version without A (HJ 212-2017 C.14).
func (c *conn) answer(p hj212.Packet, cn string) {
	if p.NoFlag || !p.Flag.Ack() {
		return
	}
	a := hj212.Packet{QN: p.QN, ST: hj212.STSystem, CN: cn, PW: p.PW, MN: p.MN,
		Flag: hj212.MakeFlag(p.Flag.Version(), false, false)}
	if c.send(a) {
		c.l.m.answers.WithLabelValues(cn).Inc()
	}
}

// send writes one frame within writeTimeout; a peer that does not read is
// closed.
func (c *conn) send(p hj212.Packet) bool {
	f, err := p.Frame()
	if err != nil {
		c.l.log.Error("BUG: cannot encode an HJ 212 frame", "cn", p.CN, "err", err)
		return false
	}
	c.nc.SetWriteDeadline(c.l.o.Now().Add(writeTimeout))
	if _, err := c.nc.Write(f); err != nil {
		c.l.log.Info("cannot write to a data logger; closing", "mn", p.MN, "remote", c.nc.RemoteAddr().String(), "err", err)
		c.nc.Close()
		return false
	}
	return true
}
