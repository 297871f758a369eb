package sim

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Read is one read the server answered, for tests to compare against what
// the gateway stored.
type Read struct {
	Unit     uint8
	Function byte
	Address  uint16
	Words    []uint16
	At       time.Time
}

// Server is a Modbus TCP server with several units behind one endpoint.
type Server struct {
	Log *slog.Logger
	// OnRead, if set, is called after each answered read.
	OnRead func(Read)
	// Now returns the simulated time (default time.Now).
	Now func() time.Time

	mu    sync.Mutex
	units map[uint8]Device
	dead  map[uint8]bool
}

// NewServer returns a server with no units.
func NewServer(log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{Log: log, units: map[uint8]Device{}, dead: map[uint8]bool{}, Now: time.Now}
}

// AddUnit puts device d at unit address u.
func (s *Server) AddUnit(u uint8, d Device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.units[u] = d
}

// SetDead makes unit u stop answering (a cut cable), or answer again.
func (s *Server) SetDead(u uint8, dead bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead[u] = dead
}

// Serve accepts connections on ln until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	conns := make(map[net.Conn]bool)
	var cmu sync.Mutex
	defer func() {
		cmu.Lock()
		for c := range conns {
			c.Close()
		}
		cmu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		cmu.Lock()
		conns[c] = true
		cmu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(c)
			cmu.Lock()
			delete(conns, c)
			cmu.Unlock()
		}()
	}
}

func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	var hdr [7]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		length := binary.BigEndian.Uint16(hdr[4:])
		if binary.BigEndian.Uint16(hdr[2:]) != 0 || length < 2 || length > 254 {
			s.Log.Warn("bad MBAP header; closing", "header", fmt.Sprintf("% x", hdr))
			return
		}
		pdu := make([]byte, length-1)
		if _, err := io.ReadFull(r, pdu); err != nil {
			return
		}
		resp, ok := s.handle(hdr[6], pdu)
		if !ok {
			continue // a dead unit: the gateway times out
		}
		out := make([]byte, 7+len(resp))
		copy(out, hdr[:4])
		binary.BigEndian.PutUint16(out[4:], uint16(len(resp)+1))
		out[6] = hdr[6]
		copy(out[7:], resp)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func exception(fc, code byte) []byte { return []byte{fc | 0x80, code} }

// handle answers one PDU for unit u; ok is false when nothing is sent.
func (s *Server) handle(u uint8, pdu []byte) ([]byte, bool) {
	s.mu.Lock()
	dev, known := s.units[u]
	dead := s.dead[u]
	s.mu.Unlock()
	if !known || dead {
		return nil, false
	}
	fc := pdu[0]
	switch fc {
	case 0x03, 0x04:
		if len(pdu) != 5 {
			return exception(fc, 3), true
		}
		addr, count := binary.BigEndian.Uint16(pdu[1:]), binary.BigEndian.Uint16(pdu[3:])
		if count < 1 || count > 125 {
			return exception(fc, 3), true
		}
		now := s.Now()
		regs := dev.Registers(now)
		words := make([]uint16, count)
		for i := range words {
			v, ok := regs[addr+uint16(i)]
			if !ok {
				return exception(fc, 2), true
			}
			words[i] = v
		}
		out := make([]byte, 2+2*count)
		out[0], out[1] = fc, byte(2*count)
		for i, w := range words {
			binary.BigEndian.PutUint16(out[2+2*i:], w)
		}
		if s.OnRead != nil {
			s.OnRead(Read{Unit: u, Function: fc, Address: addr, Words: words, At: now})
		}
		return out, true
	default:
		return exception(fc, 1), true
	}
}
