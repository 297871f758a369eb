package sim

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"time"
)

// Read is one read the simulator answered, for tests to compare against what
// the gateway stored.
type Read struct {
	Unit     uint8
	Function byte
	Address  uint16
	Words    []uint16
	At       time.Time
}

// Fault makes a simulated unit misbehave the way field devices do.
type Fault struct {
	Dead      bool          // never answers (cut cable, no power, wrong address)
	Exception byte          // answers every request with this exception code
	CRCEvery  int           // every Nth reply carries a corrupted CRC (1: all)
	Delay     time.Duration // answers this much later than it should (a slow unit)
	Garbage   bool          // answers with line noise instead of a frame
	// Late holds the unit's reply until the next request, to any unit, is on
	// an RTU line (a pseudo-terminal or a serial device server), and sends
	// it then, before that request's answer: a reply so late that it lands
	// in the next transaction however long the client waited, and however
	// slowly the test runs. On Modbus TCP a late unit never answers.
	Late bool
	// Replies from another address, to another function, or cut short:
	// what a miswired bus or a failing unit produces.
	WrongUnit, WrongFunction, Short bool
}

// Settings lets a device's address and baud rate be changed over Modbus,
// as the Renke family does with registers 0x07D0 and 0x07D1.
type Settings interface {
	AddressRegister() uint16
	BaudRegister() (reg uint16, codes map[uint16]int)
}

// InputDevice is a device with input registers (read with FC04); other
// devices answer FC04 with exception 2.
type InputDevice interface {
	InputRegisters(now time.Time) map[uint16]uint16
}

// Bus is a set of simulated units on one line, whatever carries it (a TCP
// server or a pseudo-terminal).
type Bus struct {
	// OnRead, if set, is called after each answered read.
	OnRead func(Read)
	// Now returns the simulated time (default time.Now).
	Now func() time.Time

	mu     sync.Mutex
	units  map[uint8]*unit
	faults map[uint8]Fault
	rng    *rand.Rand
	held   [][]byte // RTU frames of Late units' replies, for the next request
}

type unit struct {
	dev     Device
	baud    int // 0: the line's rate
	replies int
	regs    map[uint16]uint16 // written holding registers (beyond the device's own)
}

// NewBus returns a bus with no units.
func NewBus() *Bus {
	return &Bus{units: map[uint8]*unit{}, faults: map[uint8]Fault{}, Now: time.Now, rng: rand.New(rand.NewPCG(1, 1))}
}

// AddUnit puts device d at unit address u. baud, if not 0, is the rate the
// unit listens at (units at another rate than the line's see noise).
func (b *Bus) AddUnit(u uint8, d Device, baud int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.units[u] = &unit{dev: d, baud: baud, regs: map[uint16]uint16{}}
}

// SetFault sets (or, with the zero Fault, clears) unit u's misbehaviour.
func (b *Bus) SetFault(u uint8, f Fault) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.faults[u] = f
}

// SetDead makes unit u stop answering, or answer again.
func (b *Bus) SetDead(u uint8, dead bool) { b.SetFault(u, Fault{Dead: dead}) }

// Dead reports whether unit u is set never to answer.
func (b *Bus) Dead(u uint8) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.faults[u].Dead
}

// Units returns the unit addresses and the baud rate each listens at.
func (b *Bus) Units() map[uint8]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[uint8]int{}
	for a, u := range b.units {
		out[a] = u.baud
	}
	return out
}

// reply is what a unit sends back.
type reply struct {
	pdu       []byte
	delay     time.Duration
	badCRC    bool
	garbage   bool
	wrongUnit bool
	short     bool
}

// handle answers one request PDU for unit u at line rate baud; ok is false
// when the unit stays silent (absent, dead, at another baud, or broadcast).
func (b *Bus) handle(addr uint8, pdu []byte, baud int) (reply, bool) {
	b.mu.Lock()
	if addr == 0 { // broadcast: every unit acts, none answers
		for a, u := range b.units {
			if u.baud == 0 || u.baud == baud {
				b.apply(a, u, pdu)
			}
		}
		b.mu.Unlock()
		return reply{}, false
	}
	u, known := b.units[addr]
	f := b.faults[addr]
	if !known || f.Dead || (baud != 0 && u.baud != 0 && u.baud != baud) {
		b.mu.Unlock()
		return reply{}, false
	}
	u.replies++
	r := reply{delay: f.Delay, garbage: f.Garbage, badCRC: f.CRCEvery > 0 && u.replies%f.CRCEvery == 0,
		wrongUnit: f.WrongUnit, short: f.Short}
	if f.Exception != 0 {
		r.pdu = exception(pdu[0], f.Exception)
		b.mu.Unlock()
		return b.hold(addr, r, f.Late)
	}
	var read *Read
	r.pdu, read = b.apply(addr, u, pdu)
	b.mu.Unlock()
	if f.WrongFunction {
		r.pdu = append([]byte{r.pdu[0] ^ 0x07}, r.pdu[1:]...) // 3 ↔ 4
	}
	if read != nil && b.OnRead != nil {
		b.OnRead(*read)
	}
	return b.hold(addr, r, f.Late)
}

// hold keeps a late unit's reply for the next request (see Fault.Late).
func (b *Bus) hold(addr uint8, r reply, late bool) (reply, bool) {
	if !late {
		return r, true
	}
	b.mu.Lock()
	b.held = append(b.held, encodeRTU(addr, r))
	b.mu.Unlock()
	return reply{}, false
}

// takeHeld returns the late replies held for this request, and forgets them.
func (b *Bus) takeHeld() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.held
	b.held = nil
	return h
}

// Held counts the late replies waiting for the next request on the line.
func (b *Bus) Held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.held)
}

func exception(fc, code byte) []byte { return []byte{fc | 0x80, code} }

// registers are a unit's readable holding registers now: its device's plus
// its settings and whatever was written.
func (b *Bus) registers(addr uint8, u *unit, now time.Time) map[uint16]uint16 {
	regs := u.dev.Registers(now)
	for k, v := range u.regs {
		if _, ok := regs[k]; !ok {
			regs[k] = v
		}
	}
	if s, ok := u.dev.(Settings); ok {
		regs[s.AddressRegister()] = uint16(addr)
		reg, codes := s.BaudRegister()
		for code, baud := range codes {
			if baud == u.baud {
				regs[reg] = code
			}
		}
	}
	return regs
}

// apply executes a PDU for unit u at address addr; b.mu is held.
func (b *Bus) apply(addr uint8, u *unit, pdu []byte) ([]byte, *Read) {
	fc := pdu[0]
	switch fc {
	case 0x03, 0x04:
		if len(pdu) != 5 {
			return exception(fc, 3), nil
		}
		start, count := binary.BigEndian.Uint16(pdu[1:]), binary.BigEndian.Uint16(pdu[3:])
		if count < 1 || count > 125 {
			return exception(fc, 3), nil
		}
		now := b.Now()
		regs := b.registers(addr, u, now)
		if fc == 0x04 {
			regs = map[uint16]uint16{}
			if in, ok := u.dev.(InputDevice); ok {
				regs = in.InputRegisters(now)
			}
		}
		words := make([]uint16, count)
		for i := range words {
			v, ok := regs[start+uint16(i)]
			if !ok {
				return exception(fc, 2), nil
			}
			words[i] = v
		}
		out := []byte{fc, byte(2 * count)}
		for _, w := range words {
			out = binary.BigEndian.AppendUint16(out, w)
		}
		return out, &Read{Unit: addr, Function: fc, Address: start, Words: words, At: now}
	case 0x06:
		if len(pdu) != 5 {
			return exception(fc, 3), nil
		}
		if code := b.write(addr, u, binary.BigEndian.Uint16(pdu[1:]), []uint16{binary.BigEndian.Uint16(pdu[3:])}); code != 0 {
			return exception(fc, code), nil
		}
		return append([]byte(nil), pdu...), nil
	case 0x10:
		if len(pdu) < 6 {
			return exception(fc, 3), nil
		}
		start, n := binary.BigEndian.Uint16(pdu[1:]), int(binary.BigEndian.Uint16(pdu[3:]))
		if n < 1 || n > 123 || int(pdu[5]) != 2*n || len(pdu) != 6+2*n {
			return exception(fc, 3), nil
		}
		vals := make([]uint16, n)
		for i := range vals {
			vals[i] = binary.BigEndian.Uint16(pdu[6+2*i:])
		}
		if code := b.write(addr, u, start, vals); code != 0 {
			return exception(fc, code), nil
		}
		return append([]byte(nil), pdu[:5]...), nil
	}
	return exception(fc, 1), nil
}

// write stores values at start; writing the address or baud register of a
// Settings device moves it, effective immediately. It returns an exception
// code, or 0.
func (b *Bus) write(addr uint8, u *unit, start uint16, vals []uint16) byte {
	s, configurable := u.dev.(Settings)
	for i, v := range vals {
		reg := start + uint16(i)
		switch {
		case configurable && reg == s.AddressRegister():
			if v < 1 || v > 247 {
				return 3
			}
			delete(b.units, addr)
			b.units[uint8(v)] = u
			b.faults[uint8(v)] = b.faults[addr]
			delete(b.faults, addr)
		case configurable && func() bool { r, _ := s.BaudRegister(); return reg == r }():
			_, codes := s.BaudRegister()
			baud, ok := codes[v]
			if !ok {
				return 3
			}
			u.baud = baud
		default:
			u.regs[reg] = v
		}
	}
	return 0
}
