package sim

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
)

// RTUServer serves a Bus over Modbus RTU on a pseudo-terminal, honouring
// wire time at the line's baud rate: a reply arrives when its last byte
// would have on a real line (the request's own wire time, the unit's 3.5-
// character turnaround, the reply's wire time), so bus timing in tests is
// realistic. Units answer only when the program on the other end has set the
// port to their baud rate. A request that starts before the line has been
// quiet for 3.5 characters is a collision: on RS485 it would be garbled, so
// it is counted and not answered.
type RTUServer struct {
	*Bus
	Mode serialport.Mode
	// Path is the device path to open, like /dev/ttyUSB0.
	Path string

	pty        *serialport.PTY
	line       *timeline
	requests   atomic.Int64
	collisions atomic.Int64
	noise      atomic.Int64
	minGap     atomic.Int64 // shortest silence before a request, in ns
	wg         sync.WaitGroup
}

// ServeRTU starts an RTU line at mode on a new pseudo-terminal until ctx is
// done. Its Path is where a client opens the "serial port".
func ServeRTU(ctx context.Context, bus *Bus, mode serialport.Mode) (*RTUServer, error) {
	pty, err := serialport.OpenPTY()
	if err != nil {
		return nil, err
	}
	s := &RTUServer{Bus: bus, Mode: mode, Path: pty.Slave, pty: pty, line: &timeline{}}
	chunks := make(chan chunk, 64)
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.read(chunks) }()
	go func() { defer s.wg.Done(); s.serve(ctx, chunks) }()
	go func() { <-ctx.Done(); pty.Close() }()
	return s, nil
}

// Wait returns once the server has stopped (after its context is done).
func (s *RTUServer) Wait() { s.wg.Wait() }

// Collisions counts requests that began before the line was quiet.
func (s *RTUServer) Collisions() int64 { return s.collisions.Load() }

// Requests counts the request frames taken off the line, answered or not.
func (s *RTUServer) Requests() int64 { return s.requests.Load() }

// Quiet reports whether no reply is scheduled and the line has been silent
// for 3.5 characters: a request that starts now cannot collide. The server
// dates bytes when it reads them, so on a loaded machine a request a client
// sent without waiting for an answer (after a timeout, or a broadcast) can
// seem to follow the previous one too closely; a test that waits for Quiet
// (and for Requests to count the previous request) rules that out.
func (s *RTUServer) Quiet() bool {
	l := s.line
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending) == 0 && !time.Now().Before(l.lastEnd.Add(s.interFrame()))
}

// Noise counts frames dropped as unreadable: bad CRC, wrong baud, garbage.
func (s *RTUServer) Noise() int64 { return s.noise.Load() }

// MinGap is the shortest silence seen on the line before a request.
func (s *RTUServer) MinGap() time.Duration { return time.Duration(s.minGap.Load()) }

// chunk is bytes as they arrived, stamped.
type chunk struct {
	b  []byte
	at time.Time
}

func (s *RTUServer) read(out chan<- chunk) {
	defer close(out)
	buf := make([]byte, 512)
	for {
		n, err := s.pty.Master.Read(buf)
		if err != nil {
			return
		}
		out <- chunk{b: append([]byte(nil), buf[:n]...), at: time.Now()}
	}
}

// interFrame is the 3.5-character silence at the rate the line runs at now.
func (s *RTUServer) interFrame() time.Duration {
	m := s.mode()
	if m.Baud > 19200 {
		return 1750 * time.Microsecond
	}
	return 35 * m.CharTime() / 10
}

func (s *RTUServer) wire(n int) time.Duration { return time.Duration(n) * s.mode().CharTime() }

// mode is the line's framing at the rate the program on the other end has
// set, which is what the bytes travel at.
func (s *RTUServer) mode() serialport.Mode {
	m := s.Mode
	if b, err := s.pty.Baud(); err == nil && b != 0 {
		m.Baud = b
	}
	return m
}

// requestLen is the length of a request frame from its first bytes, 0 if
// more are needed, -1 if it cannot be a request we know.
func requestLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case 0x01, 0x02, 0x03, 0x04, 0x05, 0x06:
		return 8
	case 0x0F, 0x10:
		if len(b) < 7 {
			return 0
		}
		return 9 + int(b[6])
	}
	return -1
}

func (s *RTUServer) serve(ctx context.Context, in <-chan chunk) {
	line := s.line
	done := make(chan struct{})
	go func() { defer close(done); s.transmit(ctx, line) }()
	defer func() { <-done }()
	var buf []byte
	var start time.Time // when the first byte of buf arrived
	for {
		var c chunk
		var ok bool
		if len(buf) > 0 {
			// Bytes that form no frame are dropped after a silence.
			select {
			case c, ok = <-in:
			case <-time.After(s.interFrame() + 5*time.Millisecond):
				s.noise.Add(1)
				buf = nil
				continue
			}
		} else {
			c, ok = <-in
		}
		if !ok {
			line.close()
			return
		}
		if len(buf) == 0 {
			start = c.at
		}
		buf = append(buf, c.b...)
		for len(buf) > 0 {
			n := requestLen(buf)
			if n < 0 {
				s.noise.Add(1)
				buf = nil
				break
			}
			if n == 0 || len(buf) < n {
				break
			}
			frame := buf[:n]
			buf = append([]byte(nil), buf[n:]...)
			s.frame(frame, start, line)
			start = c.at
		}
	}
}

// timeline is what is on the line: when it was last busy, and the replies
// scheduled to go out. Two transmissions that overlap garble each other.
type timeline struct {
	mu      sync.Mutex
	lastEnd time.Time // end of the last transmission that has happened
	pending []*transmission
	wake    chan struct{}
	closed  bool
}

type transmission struct {
	start, end time.Time
	bytes      []byte
	garbled    bool
}

func (l *timeline) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.poke()
}

func (l *timeline) poke() {
	l.mu.Lock()
	if l.wake == nil {
		l.wake = make(chan struct{}, 1)
	}
	w := l.wake
	l.mu.Unlock()
	select {
	case w <- struct{}{}:
	default:
	}
}

// frame handles one complete request frame that began at start.
func (s *RTUServer) frame(frame []byte, start time.Time, line *timeline) {
	reqEnd := start.Add(s.wire(len(frame)))
	s.requests.Add(1)
	line.mu.Lock()
	if !line.lastEnd.IsZero() {
		gap := int64(start.Sub(line.lastEnd))
		if old := s.minGap.Load(); old == 0 || gap < old {
			s.minGap.Store(gap)
		}
	}
	collided := start.Before(line.lastEnd.Add(s.interFrame()))
	for _, p := range line.pending {
		if p.start.Before(reqEnd) && start.Before(p.end) {
			p.garbled, collided = true, true
		}
	}
	line.lastEnd = maxTime(line.lastEnd, reqEnd)
	line.mu.Unlock()
	if collided {
		s.collisions.Add(1)
		return
	}
	if binary.LittleEndian.Uint16(frame[len(frame)-2:]) != crc16(frame[:len(frame)-2]) {
		s.noise.Add(1) // a real unit ignores a frame it cannot read
		return
	}
	// Late replies held for this request go out after it, each after a
	// silence, and this request's answer after them.
	next := reqEnd.Add(s.interFrame())
	for _, late := range s.takeHeld() {
		end := next.Add(s.wire(len(late)))
		line.mu.Lock()
		line.pending = append(line.pending, &transmission{start: next, end: end, bytes: late})
		line.mu.Unlock()
		line.poke()
		next = end.Add(s.interFrame())
	}
	r, ok := s.handle(frame[0], frame[1:len(frame)-2], s.mode().Baud)
	if !ok {
		return
	}
	out := encodeRTU(frame[0], r)
	rs := next.Add(r.delay)
	line.mu.Lock()
	line.pending = append(line.pending, &transmission{start: rs, end: rs.Add(s.wire(len(out))), bytes: out})
	line.mu.Unlock()
	line.poke()
}

// transmit writes each scheduled reply when its last byte would have
// arrived; a garbled one arrives as noise.
func (s *RTUServer) transmit(ctx context.Context, line *timeline) {
	line.poke()
	for {
		line.mu.Lock()
		if line.closed {
			line.mu.Unlock()
			return
		}
		wake := line.wake
		var next *transmission
		for _, p := range line.pending {
			if next == nil || p.end.Before(next.end) {
				next = p
			}
		}
		line.mu.Unlock()
		wait := time.Hour
		if next != nil {
			wait = time.Until(next.end)
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-wake:
				continue
			case <-time.After(wait):
			}
		}
		if next == nil {
			continue
		}
		line.mu.Lock()
		for i, p := range line.pending {
			if p == next {
				line.pending = append(line.pending[:i], line.pending[i+1:]...)
				break
			}
		}
		line.lastEnd = maxTime(line.lastEnd, next.end)
		out := next.bytes
		if next.garbled {
			out = []byte{0x00, 0xFF, 0x00}
		}
		line.mu.Unlock()
		_, _ = s.pty.Master.Write(out)
	}
}

// encodeRTU frames a unit's reply, with its faults.
func encodeRTU(addr byte, r reply) []byte {
	if r.wrongUnit {
		addr++
	}
	out := append([]byte{addr}, r.pdu...)
	out = binary.LittleEndian.AppendUint16(out, crc16(out))
	if r.badCRC {
		out[len(out)-1] ^= 0x5A
	}
	if r.short {
		out = out[:len(out)/2]
	}
	if r.garbage {
		out = []byte{0xFF, 0x00, 0xFE, 0x7F, 0x80, 0x01}
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// crc16 is CRC-16/MODBUS, written out here so the simulator does not share
// the client's code.
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, x := range b {
		crc ^= uint16(x)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}
