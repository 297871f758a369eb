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
// acquisition time in Beijing time (see frames.go for units, decimals and
// flags).
package hj212up

import (
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
)

// Options are an uplink's settings and collaborators.
type Options struct {
	Config   config.HJ212Uplink // validated: defaults filled in
	Buffer   *buffer.Buffer     // wakes the uplink when items arrive
	Consumer *buffer.Consumer   // the uplink's cursor in Buffer
	Log      *slog.Logger
	Metrics  *Metrics
	// Location is the zone of DataTime and QN; nil is Beijing time (UTC+8),
	// what platforms run on.
	Location *time.Location
	// OnConfirm, if set, is called after the cursor moved to through (tests
	// wait on it).
	OnConfirm func(through uint64)

	now       func() time.Time
	retryBase time.Duration // first wait before dialling again; 1s
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
	skips     map[string]int // of the frame being sent, counted once it is confirmed
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
		"platform", o.Config.Address), m: o.Metrics, mapper: NewMapper(o.Config.Factors, o.Config.Units), version: v}
}

// Connected reports whether the uplink is connected to its platform.
func (u *Uplink) Connected() bool { return u.connected.Load() }

// Run dials the platform and sends until ctx is done.
func (u *Uplink) Run(ctx context.Context) error {
	name := u.c.Name
	u.m.track(name, u.o.Consumer)
	defer u.m.track(name, nil)
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
			failing = false
			u.m.connects.WithLabelValues(name).Inc()
			u.log.Info("connected to the HJ 212 platform", "pending_items", u.o.Consumer.Stats().Pending)
			err := u.session(ctx, conn)
			if ctx.Err() != nil {
				return nil
			}
			u.m.unusable.WithLabelValues(name).Inc()
			u.log.Warn("HJ 212 link unusable; dialling again", "err", err)
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
	for {
		notify := u.o.Buffer.Notify()
		parts, through, readings, err := u.next()
		if err != nil {
			return err
		}
		if len(parts) == 0 && through > u.o.Consumer.Confirmed() {
			if err := u.confirm(through, 0); err != nil {
				return err
			}
			continue
		}
		if len(parts) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-notify:
			case p := <-in:
				u.request(p)
			case err := <-rerr:
				return err
			}
			continue
		}
		for _, p := range parts {
			if err := u.send(ctx, conn, p, in, rerr); err != nil {
				return err
			}
		}
		u.m.confirmed.WithLabelValues(u.c.Name).Inc()
		if err := u.confirm(through, readings); err != nil {
			return err
		}
	}
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

// request handles a packet from the platform that is not the answer
// awaited. Requests (time, intervals, history) are counted and not yet
// answered.
func (u *Uplink) request(p hj212.Packet) {
	if p.CN == hj212.CNDataResponse {
		return // a late answer to a frame already confirmed
	}
	u.m.requests.WithLabelValues(u.c.Name, p.CN).Inc()
	u.log.Info("platform request not handled", "cn", p.CN, "qn", p.QN)
}

// send writes one packet and, with ack on, waits for its 9014, sending it
// again up to Retries times.
func (u *Uplink) send(ctx context.Context, conn net.Conn, p hj212.Packet, in <-chan hj212.Packet, rerr <-chan error) error {
	frame, err := p.Frame()
	if err != nil {
		return fmt.Errorf("BUG: cannot encode a frame: %w", err)
	}
	for attempt := 0; attempt <= *u.c.Retries; attempt++ {
		if attempt > 0 {
			u.m.resends.WithLabelValues(u.c.Name).Inc()
		}
		conn.SetWriteDeadline(time.Now().Add(u.c.AckTimeout))
		if _, err := conn.Write(frame); err != nil {
			return fmt.Errorf("writing to the platform: %w", err)
		}
		u.m.frames.WithLabelValues(u.c.Name, p.CN).Inc()
		if !*u.c.Ack {
			return nil
		}
		if ok, err := u.await(ctx, p.QN, in, rerr); ok || err != nil {
			return err
		}
		u.m.ackTimeouts.WithLabelValues(u.c.Name).Inc()
	}
	return fmt.Errorf("no 9014 for QN %s after %d sends of %v each", p.QN, *u.c.Retries+1, u.c.AckTimeout)
}

// await waits up to AckTimeout for the 9014 answering qn.
func (u *Uplink) await(ctx context.Context, qn string, in <-chan hj212.Packet, rerr <-chan error) (bool, error) {
	t := time.NewTimer(u.c.AckTimeout)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case err := <-rerr:
			return false, err
		case <-t.C:
			return false, nil
		case p := <-in:
			if p.CN == hj212.CNDataResponse && p.QN == qn {
				return true, nil
			}
			u.request(p)
		}
	}
}

// confirm moves the cursor and counts what the frame carried.
func (u *Uplink) confirm(through uint64, readings int) error {
	if err := u.o.Consumer.Confirm(through); err != nil {
		return err
	}
	u.m.readings.WithLabelValues(u.c.Name).Add(float64(readings))
	for reason, n := range u.skips {
		u.m.skipped.WithLabelValues(u.c.Name, reason).Add(float64(n))
	}
	u.skips = nil
	if u.o.OnConfirm != nil {
		u.o.OnConfirm(through)
	}
	return nil
}

// readLimit is how many items one buffer read takes.
const readLimit = 256

// next builds the next frame from the cursor on: its packets (more than
// one when split), the last sequence it covers, and how many readings it
// carries. No packets and through beyond the cursor: items to skip.
func (u *Uplink) next() (parts []hj212.Packet, through uint64, readings int, err error) {
	pos := u.o.Consumer.Confirmed() + 1
	through = pos - 1
	u.skips = nil
	var f realtime
	realtimeOn := u.c.SendsRealtime()
read:
	for {
		ch, err := u.o.Consumer.Read(pos, readLimit)
		if err != nil {
			return nil, 0, 0, err
		}
		if ch.Len() == 0 {
			break
		}
		if len(ch.Events) > 0 { // events have no place in real-time data
			through = ch.First + uint64(ch.Len()) - 1
			pos = through + 1
			continue
		}
		for i, r := range ch.Readings {
			seq := ch.First + uint64(i)
			fc, v, mapped, skip := u.mapper.Map(r)
			switch {
			case !mapped || !realtimeOn:
			case skip != "":
				if u.skips == nil {
					u.skips = map[string]int{}
				}
				u.skips[skip]++
			case !f.add(fc, v, r):
				break read // this reading opens the next frame
			}
			through = seq
		}
		pos = through + 1
	}
	if f.empty() {
		return nil, through, 0, nil
	}
	p := hj212.Packet{QN: u.qn(), ST: u.c.ST, CN: hj212.CNRealtime, PW: u.c.PW, MN: u.c.MN,
		Flag: hj212.MakeFlag(u.version, false, *u.c.Ack), CP: f.cp(u.o.Location)}
	parts, err = hj212.Split(p, 1)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("cannot split a real-time frame: %w", err)
	}
	for i := 1; i < len(parts); i++ {
		parts[i].QN = u.qn() // each part is answered by its own QN (C.49, C.50)
	}
	return parts, through, f.readings, nil
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
