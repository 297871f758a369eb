package modbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	gridx "github.com/grid-x/modbus"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
)

// RTUOptions are the timing of an RTU line.
type RTUOptions struct {
	// Mode is the line's framing; its baud rate sets the character time and
	// so the 3.5-character silence between frames.
	Mode serialport.Mode
	// Timeout is how long to wait for the first byte of a reply once the
	// request has left the wire.
	Timeout time.Duration
	// Turnaround is the least silence kept after any frame before the next
	// request, for units slow to switch their RS485 driver back (the 3.5
	// characters the standard asks for are always kept).
	Turnaround time.Duration
}

// InterFrame is the silence the Modbus serial-line standard requires
// between frames: 3.5 characters, or 1.75 ms above 19200 baud.
func (o RTUOptions) InterFrame() time.Duration {
	if o.Mode.Baud > 19200 {
		return 1750 * time.Microsecond
	}
	return 35 * o.Mode.CharTime() / 10
}

// gap is the silence kept before each request.
func (o RTUOptions) gap() time.Duration { return max(o.InterFrame(), o.Turnaround) }

// wire is how long n bytes take on the line.
func (o RTUOptions) wire(n int) time.Duration { return time.Duration(n) * o.Mode.CharTime() }

// link is the byte pipe under an RTU transport: a serial port, or a TCP
// connection to a serial device server.
type link interface {
	write(b []byte) error
	// readFull fills b or stops at deadline, returning how much it read.
	readFull(b []byte, deadline time.Time) (int, error)
	discardInput()
	close() error
}

// NewRTU returns a client for the units on the serial port at path. The port
// is opened on the first request and reopened after it fails (a USB adapter
// unplugged and plugged back in).
func NewRTU(path string, o RTUOptions) Client {
	return &client{t: &rtuTransport{o: o, name: path, dial: func() (link, error) {
		p, err := serialport.Open(path, o.Mode)
		if err != nil {
			return nil, err
		}
		return &serialLink{p: p}, nil
	}}}
}

// NewRTUOverTCP returns a client for RTU frames carried over TCP to a serial
// device server (a DTU) at addr. o.Mode is the DTU's serial side, for the
// gaps between frames.
func NewRTUOverTCP(addr string, o RTUOptions) Client {
	return &client{t: &rtuTransport{o: o, name: addr, dial: func() (link, error) {
		c, err := net.DialTimeout("tcp", addr, max(o.Timeout, 3*time.Second))
		if err != nil {
			return nil, err
		}
		return &connLink{c: c}, nil
	}}}
}

// rtuTransport frames requests as RTU ADUs (address, PDU, CRC-16) with
// grid-x's packager and keeps the line's timing itself: the silence before
// each request, the response timeout measured from the end of the request,
// and the resynchronisation after garbage.
type rtuTransport struct {
	o    RTUOptions
	name string
	dial func() (link, error)
	l    link
	idle time.Time // when the line last went quiet
	pack gridx.RTUClientHandler
}

func (t *rtuTransport) transact(ctx context.Context, unit byte, pdu []byte) ([]byte, error) {
	if t.l == nil {
		l, err := t.dial()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConnection, err)
		}
		t.l = l
		// What was on the line before we opened it is unknown: keep the
		// inter-frame silence from now.
		t.idle = time.Now()
	}
	if wait := time.Until(t.idle.Add(t.o.gap())); wait > 0 {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
	t.pack.SetSlave(unit)
	adu, err := t.pack.Encode(&gridx.ProtocolDataUnit{FunctionCode: pdu[0], Data: pdu[1:]})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	t.l.discardInput() // a late reply to an earlier request is not this one's
	if err := t.l.write(adu); err != nil {
		return nil, t.fail(err)
	}
	sent := time.Now()
	onWire := sent.Add(t.o.wire(len(adu)))
	if unit == 0 {
		t.idle = onWire
		return nil, nil
	}
	resp, err := t.readReply(unit, onWire.Add(t.o.Timeout))
	t.idle = time.Now()
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// readReply reads frames until one comes from unit, and returns its PDU. A
// well-formed frame from another unit (a late reply to an earlier request,
// or a unit that answers for another's address) is skipped; if no frame of
// unit's comes before deadline, the error says who did answer.
func (t *rtuTransport) readReply(unit byte, deadline time.Time) ([]byte, error) {
	var foreign byte
	sawForeign := false
	for {
		frame, err := t.readFrame(deadline)
		if errors.Is(err, ErrTimeout) && sawForeign {
			return nil, fmt.Errorf("%w: only unit %d answered a request to unit %d", ErrWrongUnit, foreign, unit)
		}
		if errors.Is(err, ErrTimeout) {
			return nil, fmt.Errorf("%w from unit %d within %v", ErrTimeout, unit, t.o.Timeout)
		}
		if err != nil {
			return nil, err
		}
		if frame[0] != unit {
			foreign, sawForeign = frame[0], true
			continue
		}
		p, _ := t.pack.Decode(frame) // the CRC was checked by readFrame
		return append([]byte{p.FunctionCode}, p.Data...), nil
	}
}

// readFrame reads one complete frame with a good CRC, or fails with
// ErrTimeout (nothing began before deadline), ErrShortFrame, ErrCRC,
// ErrMalformed or ErrWrongFunction, or a connection error.
func (t *rtuTransport) readFrame(deadline time.Time) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := t.l.readFull(buf[:2], deadline)
	if err != nil {
		if n == 0 && errors.Is(err, ErrTimeout) {
			return nil, ErrTimeout
		}
		if errors.Is(err, ErrTimeout) {
			t.resync()
			return nil, fmt.Errorf("%w after 1 byte: % x", ErrShortFrame, buf[:1])
		}
		return nil, t.fail(err)
	}
	// Once a reply has begun, its bytes follow back to back: allow the
	// frame's own wire time plus a generous margin for the rest.
	rest := func(n int) time.Time { return time.Now().Add(t.o.wire(n) + t.o.Timeout) }
	got := 2
	need := expectedLen(buf[:2])
	if need < 0 { // not a function we send: the frame's end cannot be found
		t.resync()
		return nil, fmt.Errorf("%w: a reply with function %d", ErrWrongFunction, buf[1])
	}
	if need == 0 { // read replies carry their byte count next
		if k, err := t.l.readFull(buf[2:3], rest(1)); err != nil || k != 1 {
			t.resync()
			return nil, fmt.Errorf("%w after 2 bytes: % x", ErrShortFrame, buf[:2])
		}
		got = 3
		need = expectedLen(buf[:3])
	}
	if need < 4 || need > len(buf) {
		t.resync()
		return nil, fmt.Errorf("%w: a %d-byte frame is impossible (% x)", ErrMalformed, need, buf[:got])
	}
	if k, err := t.l.readFull(buf[got:need], rest(need-got)); err != nil {
		t.resync()
		return nil, fmt.Errorf("%w after %d of %d bytes: % x", ErrShortFrame, got+k, need, buf[:got+k])
	}
	frame := buf[:need]
	// A bad CRC makes the address and function meaningless, so it is
	// checked first; the address by readReply; the function with the PDU.
	if _, err := t.pack.Decode(frame); err != nil {
		t.resync()
		return nil, fmt.Errorf("%w in % x", ErrCRC, frame)
	}
	return frame, nil
}

// resync waits for the line to fall silent and drops whatever arrived, so
// the next request starts on a frame boundary.
func (t *rtuTransport) resync() {
	quiet := max(t.o.InterFrame(), 2*time.Millisecond)
	var b [64]byte
	for i := 0; i < 1000; i++ {
		n, err := t.l.readFull(b[:], time.Now().Add(quiet))
		if n == 0 || err != nil && !errors.Is(err, ErrTimeout) {
			break
		}
	}
	t.l.discardInput()
}

// fail closes a link that reported an I/O error, to reopen it next time.
func (t *rtuTransport) fail(err error) error {
	_ = t.l.close()
	t.l = nil
	return fmt.Errorf("%w: %s: %v", ErrConnection, t.name, err)
}

func (t *rtuTransport) close() error {
	if t.l == nil {
		return nil
	}
	err := t.l.close()
	t.l = nil
	return err
}

// serialLink is a link over a serial port.
type serialLink struct {
	p serialport.Port
}

func (s *serialLink) write(b []byte) error {
	if _, err := s.p.Write(b); err != nil {
		return err
	}
	return s.p.Drain()
}

func (s *serialLink) readFull(b []byte, deadline time.Time) (int, error) {
	n := 0
	for n < len(b) {
		left := time.Until(deadline)
		if left <= 0 {
			return n, ErrTimeout
		}
		if err := s.p.SetReadTimeout(left); err != nil {
			return n, err
		}
		k, err := s.p.Read(b[n:])
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

func (s *serialLink) discardInput() { _ = s.p.ResetInputBuffer() }
func (s *serialLink) close() error  { return s.p.Close() }

// connLink is a link over TCP to a serial device server.
type connLink struct {
	c net.Conn
}

func (c *connLink) write(b []byte) error {
	_ = c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.c.Write(b)
	return err
}

func (c *connLink) readFull(b []byte, deadline time.Time) (int, error) {
	if err := c.c.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	n := 0
	for n < len(b) {
		k, err := c.c.Read(b[n:])
		n += k
		if err != nil {
			if isTimeout(err) {
				return n, ErrTimeout
			}
			return n, err
		}
	}
	return n, nil
}

// discardInput drops bytes already received without waiting for more.
func (c *connLink) discardInput() {
	var b [256]byte
	for i := 0; i < 64; i++ {
		_ = c.c.SetReadDeadline(time.Now().Add(time.Microsecond))
		if n, err := c.c.Read(b[:]); n == 0 || err != nil {
			break
		}
	}
}

func (c *connLink) close() error { return c.c.Close() }
