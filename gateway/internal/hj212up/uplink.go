// Package hj212up is the gateway's HJ 212 uplink: the gateway as a data
// logger (数采仪, the 现场机) reporting to a bureau's platform (the 上位机)
// over TCP, in HJ 212-2017 or -2025.
//
// It reads the gateway's buffer through a cursor of its own
// (buffer.Consumer): what the platform has not confirmed stays in the
// buffer, and a platform that is down or slow holds nothing back from the
// MQTT uplink (docs/decisions.md, "HJ 212 uplink").
//
// The session is stop-and-wait, as the standard is: one frame at a time
// (or the parts of one split frame, each with its own QN), each waiting
// for the platform's 9014 with its QN for OverTime (ack_timeout), sent
// again up to ReCount (retries) times; then the link is considered unusable
// (HJ 212-2017 6.2), closed and dialled again after a doubling, jittered
// wait, and the frame is sent again. The cursor moves only once every part
// is confirmed.
//
// Real-time data (CN 2011) is built from the readings in buffer order:
// mapped readings of the same second share a frame, DataTime their
// acquisition time in Beijing time (see frames.go for units and decimals,
// state.go for flags, cou.go for the aggregates' Cou).
package hj212up

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Options are an uplink's settings and collaborators.
type Options struct {
	Config config.HJ212Uplink // validated: defaults filled in
	Buffer *buffer.Buffer     // wakes the uplink when items arrive
	// Consumers are the uplink's cursors in Buffer, one per data kind it
	// sends (config.HJ212Uplink.Kinds and Consumer).
	Consumers map[string]*buffer.Consumer
	Log       *slog.Logger
	Metrics   *Metrics
	// Location is the zone of DataTime and QN; nil is Beijing time (UTC+8),
	// what platforms run on.
	Location *time.Location
	// History answers the platform's history requests from the buffer
	// (which keeps confirmed segments: buffer.history); without it they
	// are refused.
	History bool
	// Clock, if set, says how the gateway's time is known (logged when a
	// platform asks to set it).
	Clock func() telemetry.ClockQuality
	// OverRange, if set, says whether a bad reading is bad because its
	// value is above the instrument's measuring range (flag T rather than
	// D): the profile's range, which the reading itself does not carry.
	OverRange func(r telemetry.Reading) bool
	// OnConfirm, if set, is called after the cursor of consumer moved to
	// through (tests wait on it).
	OnConfirm func(consumer string, through uint64)

	now       func() time.Time
	retryBase time.Duration // first wait before dialling again; 1s
	idle      func()        // tests: called each time the session has nothing to do
}

// Uplink is one platform's HJ 212 session. Run it once.
type Uplink struct {
	o         Options
	c         config.HJ212Uplink
	log       *slog.Logger
	m         *Metrics
	mapper    *Mapper
	version   int
	lastQN    time.Time
	connected atomic.Bool
	paused    atomic.Bool // the platform stopped real-time data (2012)
	// confirmedSince: a frame was confirmed on the current connection.
	confirmedSince atomic.Bool
	lastWrite      time.Time // on the current connection
	kinds          []string
	skips          map[string]int         // of the frame being sent, counted once it is confirmed
	lastSent       map[string]time.Time   // kind → start of the last period whose aggregate was confirmed
	open           map[string]*openPeriod // kind → its open period as scanned so far
	states         map[string]*devices    // kind → the devices' state at its cursor
	saved          map[string][]byte      // kind → its note as last written
	cou            *couRule
}

// New prepares an uplink; it does not connect.
func New(o Options) *Uplink {
	if o.Location == nil {
		o.Location = hj212.Beijing
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.retryBase <= 0 {
		o.retryBase = time.Second
	}
	v := hj212.Version2017
	if o.Config.Edition == 2025 {
		v = hj212.Version2025
	}
	return &Uplink{o: o, c: o.Config, log: o.Log.With("component", "hj212", "uplink", o.Config.Name,
		"platform", o.Config.Address), m: o.Metrics, mapper: NewMapper(o.Config.Factors, o.Config.Units), version: v,
		kinds: o.Config.Kinds(), lastSent: map[string]time.Time{}, open: map[string]*openPeriod{},
		states: map[string]*devices{}, saved: map[string][]byte{},
		cou: newCouRule(o.Config.CouFlows, o.Config.CouMaxGap)}
}

// state is the devices' state at the cursor of kind.
func (u *Uplink) state(kind string) *devices {
	s := u.states[kind]
	if s == nil {
		s = newDevices()
		u.states[kind] = s
	}
	return s
}

// Pending is how many items the uplink's slowest cursor has not had
// confirmed.
func (u *Uplink) Pending() uint64 {
	var n uint64
	for _, c := range u.o.Consumers {
		n = max(n, c.Stats().Pending)
	}
	return n
}

// Connected reports whether the uplink is connected to its platform.
func (u *Uplink) Connected() bool { return u.connected.Load() }

// Run dials the platform and sends until ctx is done.
func (u *Uplink) Run(ctx context.Context) error {
	name := u.c.Name
	for _, c := range u.o.Consumers {
		u.m.track(c.Name(), c)
		defer u.m.track(c.Name(), nil)
	}
	u.recall()
	wait, failing := u.o.retryBase, false
	for {
		d := net.Dialer{Timeout: u.c.ConnectTimeout}
		conn, err := d.DialContext(ctx, "tcp", u.c.Address)
		if ctx.Err() != nil {
			if conn != nil {
				conn.Close()
			}
			return nil
		}
		if err != nil {
			u.m.connectFails.WithLabelValues(name).Inc()
			if !failing {
				u.log.Warn("cannot reach the HJ 212 platform; retrying", "err", err)
			}
			failing = true
		} else {
			u.m.connects.WithLabelValues(name).Inc()
			lvl := slog.LevelInfo
			if failing {
				lvl = slog.LevelDebug // within an outage: the warning said it
			}
			u.log.Log(ctx, lvl, "connected to the HJ 212 platform", "pending_items", u.Pending())
			err := u.session(ctx, conn)
			if ctx.Err() != nil {
				return nil
			}
			u.m.unusable.WithLabelValues(name).Inc()
			if u.confirmedSince.Swap(false) || !failing {
				u.log.Warn("HJ 212 link unusable; dialling again", "err", err)
			} else {
				u.log.Debug("HJ 212 link unusable again; dialling again", "err", err)
			}
			failing = true // until a frame is confirmed: one warning per outage
			wait = u.o.retryBase
		}
		t := time.NewTimer(jitter(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, max(u.c.ReconnectMax, u.o.retryBase))
	}
}

// jitter spreads d by ±50 %, so loggers cut off together do not dial in
// step.
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d)+1))
}

var errClosed = errors.New("the platform closed the connection")

// session sends frames on conn until the link fails or ctx is done.
func (u *Uplink) session(ctx context.Context, conn net.Conn) error {
	u.connected.Store(true)
	u.m.connected.WithLabelValues(u.c.Name).Set(1)
	defer func() {
		u.connected.Store(false)
		u.m.connected.WithLabelValues(u.c.Name).Set(0)
	}()
	in := make(chan hj212.Packet, 16)
	rerr := make(chan error, 1)
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		u.readLoop(sctx, conn, in, rerr)
	}()
	defer func() {
		cancel()
		conn.Close()
		wg.Wait()
	}()
	l := &link{ctx: ctx, conn: conn, in: in, rerr: rerr}
	u.lastWrite = u.o.now()
	for {
		notify := u.o.Buffer.Notify()
		progressed, wake, err := u.step(l)
		if err != nil {
			return err
		}
		if progressed {
			continue
		}
		if u.o.idle != nil {
			u.o.idle()
		}
		if err := u.idle(l, wake, notify); err != nil {
			return err
		}
	}
}

// link is one connection to the platform: what the session writes to and
// what its reader hands over.
type link struct {
	ctx  context.Context
	conn net.Conn
	in   <-chan hj212.Packet // the platform's packets
	rerr <-chan error        // the connection failed
}

// idle waits for items, a period falling due (wake, unless zero), or the
// platform.
func (u *Uplink) idle(l *link, wake time.Time, notify <-chan struct{}) error {
	var beat time.Time
	if u.c.Heartbeat > 0 {
		beat = u.lastWrite.Add(u.c.Heartbeat)
		if !u.o.now().Before(beat) {
			return u.heartbeat(l)
		}
		if wake.IsZero() || beat.Before(wake) {
			wake = beat
		}
	}
	var timer <-chan time.Time
	if !wake.IsZero() {
		t := time.NewTimer(max(wake.Sub(u.o.now()), time.Millisecond))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-l.ctx.Done():
		return l.ctx.Err()
	case <-notify:
	case <-timer:
	case p := <-l.in:
		return u.request(l, p)
	case err := <-l.rerr:
		return err
	}
	return nil
}

// step sends the next frame of the first kind that has one (real-time
// first), or moves a cursor past items it has nothing to send for. wake
// is when an open period's aggregate falls due.
func (u *Uplink) step(l *link) (bool, time.Time, error) {
	var wake time.Time
	for _, kind := range u.kinds {
		c := u.o.Consumers[kind]
		f, err := u.next(kind, c)
		if err != nil {
			return false, wake, err
		}
		if len(f.parts) == 0 {
			if f.through > c.Confirmed() {
				return true, wake, u.confirm(c, f)
			}
			if !f.wake.IsZero() && (wake.IsZero() || f.wake.Before(wake)) {
				wake = f.wake
			}
			continue
		}
		for _, p := range f.parts {
			if err := u.send(l, p); err != nil {
				return false, wake, err
			}
		}
		u.m.confirmed.WithLabelValues(u.c.Name).Inc()
		return true, wake, u.confirm(c, f)
	}
	return false, wake, nil
}

// readLoop hands the platform's packets to the session; refused input is
// counted and skipped, a connection error ends it.
func (u *Uplink) readLoop(ctx context.Context, conn net.Conn, in chan<- hj212.Packet, rerr chan<- error) {
	r := hj212.NewReader(conn)
	for {
		p, err := r.ReadPacket()
		if err != nil {
			if k := hj212.Kind(err); k != "" {
				u.m.refused.WithLabelValues(u.c.Name, k).Inc()
				u.log.Debug("refused a frame from the platform", "kind", k, "err", err)
				continue
			}
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				err = errClosed
			}
			rerr <- fmt.Errorf("reading from the platform: %w", err)
			return
		}
		select {
		case in <- p:
		case <-ctx.Done():
			return
		}
	}
}

// send writes one packet and, with ack on, waits for its 9014, sending it
// again up to Retries times.
func (u *Uplink) send(l *link, p hj212.Packet) error {
	frame, err := p.Frame()
	if err != nil {
		return fmt.Errorf("BUG: cannot encode a frame: %w", err)
	}
	for attempt := 0; attempt <= *u.c.Retries; attempt++ {
		if attempt > 0 {
			u.m.resends.WithLabelValues(u.c.Name).Inc()
		}
		if err := u.write(l, frame); err != nil {
			return err
		}
		u.m.frames.WithLabelValues(u.c.Name, p.CN).Inc()
		if !*u.c.Ack {
			return nil
		}
		if ok, err := u.await(l, p.QN); ok || err != nil {
			return err
		}
		u.m.ackTimeouts.WithLabelValues(u.c.Name).Inc()
	}
	return fmt.Errorf("no 9014 for QN %s after %d sends of %v each", p.QN, *u.c.Retries+1, u.c.AckTimeout)
}

// await waits up to AckTimeout for the 9014 answering qn.
func (u *Uplink) await(l *link, qn string) (bool, error) {
	t := time.NewTimer(u.c.AckTimeout)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return false, l.ctx.Err()
		case err := <-l.rerr:
			return false, err
		case <-t.C:
			return false, nil
		case p := <-l.in:
			if p.CN == hj212.CNDataResponse && p.QN == qn {
				return true, nil
			}
			if err := u.request(l, p); err != nil {
				return false, err
			}
		}
	}
}

// write writes one frame, bounded by AckTimeout.
func (u *Uplink) write(l *link, frame []byte) error {
	l.conn.SetWriteDeadline(time.Now().Add(u.c.AckTimeout))
	if _, err := l.conn.Write(frame); err != nil {
		return fmt.Errorf("writing to the platform: %w", err)
	}
	u.lastWrite = u.o.now()
	return nil
}

// heartbeat sends CN 9015 with an empty data area, as the public
// implementations of HJ 212-2025 do (unverified against its text); the
// answer (9013) is not awaited.
func (u *Uplink) heartbeat(l *link) error {
	p := hj212.Packet{QN: u.qn(), ST: u.c.ST, CN: hj212.CNHeartbeat, PW: u.c.PW, MN: u.c.MN,
		Flag: hj212.MakeFlag(u.version, false, false)}
	frame, err := p.Frame()
	if err != nil {
		return err
	}
	u.m.frames.WithLabelValues(u.c.Name, p.CN).Inc()
	return u.write(l, frame)
}

// recall reads back what each cursor's note keeps: for an aggregate kind,
// the start of the last period the platform confirmed; for every kind,
// the devices' modes, quarantines and factors at the cursor.
func (u *Uplink) recall() {
	for kind, c := range u.o.Consumers {
		data, err := c.Note()
		if err != nil {
			u.log.Warn("cannot read the cursor's note; flags start from normal devices", "kind", kind, "err", err)
			continue
		}
		n, bad := parseNote(data)
		if len(bad) > 0 {
			u.log.Warn("ignoring unreadable lines of the cursor's note", "kind", kind, "lines", bad)
		}
		if kind != config.KindRealtime && !n.period.IsZero() {
			u.lastSent[kind] = n.period.In(u.o.Location)
		}
		u.states[kind] = n.state
		u.saved[kind] = data
	}
}

// confirm moves a cursor past a frame and counts what it carried.
func (u *Uplink) confirm(c *buffer.Consumer, f frame) error {
	if err := c.Confirm(f.through); err != nil {
		return err
	}
	u.confirmedSince.Store(true)
	u.m.readings.WithLabelValues(u.c.Name).Add(float64(f.readings))
	for reason, n := range u.skips {
		// Every kind reads the same readings: count them once, with the
		// first kind, and the late ones of each aggregate.
		if reason == SkipLate || f.kind == u.kinds[0] {
			u.m.skipped.WithLabelValues(u.c.Name, reason).Add(float64(n))
		}
	}
	u.skips = nil
	if !f.period.IsZero() {
		u.lastSent[f.kind] = f.period
	}
	if f.state != nil {
		u.states[f.kind] = f.state
	}
	// Kept with the cursor: after a restart, a late reading of a period
	// that went must not open it again and send a second aggregate of it
	// holding only that reading; and the items after the cursor are
	// flagged by the modes and quarantines in force there. Written when it
	// changes only (the flash).
	n := note{period: u.lastSent[f.kind], state: u.state(f.kind)}
	if data := n.marshal(); !bytes.Equal(data, u.saved[f.kind]) {
		if err := c.SetNote(data); err != nil {
			u.log.Error("cannot save the cursor's note; after a restart a late reading may be sent as a period of its own, and flags may start from normal devices",
				"kind", f.kind, "err", err)
		} else {
			u.saved[f.kind] = data
		}
	}
	if u.o.OnConfirm != nil {
		u.o.OnConfirm(c.Name(), f.through)
	}
	return nil
}

// frame is what a cursor does next: the packets of one frame (more than
// one when split) and the last sequence it covers; no packets and through
// beyond the cursor: items to move past. wake is when an open period falls
// due; period the start of an aggregate's period.
type frame struct {
	kind     string
	parts    []hj212.Packet
	through  uint64
	readings int
	wake     time.Time
	period   time.Time
	state    *devices // the devices' state at through; nil: unchanged
}

func (u *Uplink) skip(reason string) {
	if u.skips == nil {
		u.skips = map[string]int{}
	}
	u.skips[reason]++
}

// packets builds the frame's packets: split when long, each part with its
// own QN (C.49, C.50).
func (u *Uplink) packets(cn string, cp hj212.CP) ([]hj212.Packet, error) {
	p := hj212.Packet{QN: u.qn(), ST: u.c.ST, CN: cn, PW: u.c.PW, MN: u.c.MN,
		Flag: hj212.MakeFlag(u.version, false, *u.c.Ack), CP: cp}
	parts, err := hj212.Split(p, 1)
	if err != nil {
		return nil, fmt.Errorf("cannot split a %s frame: %w", cn, err)
	}
	for i := 1; i < len(parts); i++ {
		parts[i].QN = u.qn()
	}
	return parts, nil
}

// readLimit is how many items one buffer read takes.
const readLimit = 256

// next is what the cursor of kind does next.
func (u *Uplink) next(kind string, c *buffer.Consumer) (frame, error) {
	u.skips = nil
	if kind == config.KindRealtime {
		return u.nextRealtime(c)
	}
	return u.nextAggregate(kind, c)
}

// scan visits the items after c's cursor in buffer order — each event
// (always consumed) with event, each reading with visit — until visit
// returns false for a reading (not consumed) or the buffer ends. It
// returns the last sequence consumed.
func (u *Uplink) scan(c *buffer.Consumer, event func(e telemetry.Event), visit func(r telemetry.Reading) bool) (uint64, error) {
	return u.scanFrom(c, c.Confirmed()+1, event, visit)
}

// scanFrom is scan from the sequence pos on.
func (u *Uplink) scanFrom(c *buffer.Consumer, pos uint64, event func(e telemetry.Event), visit func(r telemetry.Reading) bool) (uint64, error) {
	through := pos - 1
	for {
		ch, err := c.Read(pos, readLimit) // readings or events, never both
		if err != nil || ch.Len() == 0 {
			return through, err
		}
		for _, e := range ch.Events { // no HJ 212 data, but modes and quarantines make flags
			event(e)
		}
		if len(ch.Events) > 0 {
			through = ch.First + uint64(ch.Len()) - 1
		}
		for i, r := range ch.Readings {
			if !visit(r) {
				return through, nil
			}
			through = ch.First + uint64(i)
		}
		pos = through + 1
	}
}

// realtimeGrace is how long after its second ends a real-time frame at
// the end of the buffer waits for readings of that second still to come
// (another device polled in the same second), so that one second goes as
// one frame: platforms, ours included, take a second frame with the same
// DataTime for a repeat.
const realtimeGrace = time.Second

// nextRealtime builds the next 2011 frame from the cursor on.
func (u *Uplink) nextRealtime(c *buffer.Consumer) (frame, error) {
	var f realtime
	closed := false
	st := u.state(config.KindRealtime).clone()
	through, err := u.scan(c, st.event, func(r telemetry.Reading) bool {
		fc, v, mapped, skip := u.mapper.Map(r)
		st.reading(r.Device)
		if mapped {
			st.learn(r.Device, fc.code)
		}
		switch {
		case !mapped:
		case skip == "" && u.paused.Load():
			u.skip(SkipPaused)
		case skip != "":
			u.skip(skip)
		default:
			closed = !f.add(fc, v, r, st.flag(r, u.o.OverRange), st.downCodes()) // this reading opens the next frame
			return !closed
		}
		return true
	})
	out := frame{kind: config.KindRealtime, through: through, state: st}
	if err != nil || f.empty() {
		return out, err
	}
	if due := f.second.Add(time.Second + realtimeGrace); !closed && u.o.now().Before(due) {
		return frame{kind: config.KindRealtime, through: c.Confirmed(), wake: due}, nil
	}
	out.parts, err = u.packets(hj212.CNRealtime, f.cp(u.o.Location))
	out.readings = f.readings
	return out, err
}

// openPeriod is an aggregate's open period as scanned so far, so that
// each step reads only what was appended since (a day's readings are not
// read again at every step).
type openPeriod struct {
	cursor  uint64 // the consumer's cursor when the scan began
	through uint64 // the last sequence scanned
	agg     *aggregate
	skips   map[string]int
	state   *devices // the devices' state at through
}

// nextAggregate builds the aggregate of the next period from the cursor
// on, once the period is over: a reading of a later period has come, or
// AggregateDelay has passed since its end. The cursor stays at the start
// of an open period, so a restart computes it again from the buffer.
func (u *Uplink) nextAggregate(kind string, c *buffer.Consumer) (frame, error) {
	o := u.open[kind]
	if cur := c.Confirmed(); o == nil || o.cursor != cur {
		o = &openPeriod{cursor: cur, through: cur, skips: map[string]int{}, state: u.state(kind).clone()}
		u.open[kind] = o
	}
	closed := false
	through, err := u.scanFrom(c, o.through+1, o.state.event, func(r telemetry.Reading) bool {
		fc, v, mapped, skip := u.mapper.Map(r)
		o.state.reading(r.Device)
		if mapped {
			o.state.learn(r.Device, fc.code)
		}
		if mapped && skip == "" {
			start := periodStart(kind, r.Time, u.c.MinuteInterval, u.o.Location)
			switch last := u.lastSent[kind]; {
			case o.agg == nil && !start.After(last) && !last.IsZero(), o.agg != nil && start.Before(o.agg.start):
				skip = SkipLate // its period's aggregate went already
			case o.agg == nil:
				o.agg = &aggregate{start: start, end: periodEnd(kind, start, u.c.MinuteInterval), cou: u.cou}
			case start.After(o.agg.start):
				closed = true
				return false // the first reading of a later period
			}
		}
		switch {
		case !mapped:
		case skip != "":
			o.skips[skip]++
		default:
			o.agg.add(fc, v, r, o.state.flag(r, u.o.OverRange))
			o.agg.down(o.state.downCodes(), r.Time)
		}
		return true
	})
	o.through = through
	if err != nil {
		delete(u.open, kind)
		return frame{kind: kind, through: o.cursor}, err
	}
	out := frame{kind: kind, through: through, state: o.state}
	if o.agg == nil {
		u.skips = o.skips
		return out, nil
	}
	due := periodEnd(kind, o.agg.start, u.c.MinuteInterval).Add(u.c.AggregateDelay)
	if !closed && u.o.now().Before(due) {
		return frame{kind: kind, through: o.cursor, wake: due}, nil // the period is still open
	}
	delete(u.open, kind) // the cursor moves once the frame is confirmed
	u.skips = o.skips
	out.parts, err = u.packets(cnOf[kind], o.agg.cp(u.o.Location))
	out.readings, out.period = o.agg.readings, o.agg.start
	return out, err
}

// qn is the next request number: the time in Location to the millisecond,
// strictly increasing.
func (u *Uplink) qn() string {
	t := u.o.now().Truncate(time.Millisecond)
	if !t.After(u.lastQN) {
		t = u.lastQN.Add(time.Millisecond)
	}
	u.lastQN = t
	return hj212.QN(t, u.o.Location)
}
