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

// Server serves a Bus over Modbus TCP: one endpoint, many unit addresses,
// like a serial device server in front of an RS485 line.
type Server struct {
	*Bus
	Log *slog.Logger
}

// NewServer returns a Modbus TCP server with an empty bus.
func NewServer(log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{Bus: NewBus(), Log: log}
}

// AddUnit puts device d at unit address u.
func (s *Server) AddUnit(u uint8, d Device) { s.Bus.AddUnit(u, d, 0) }

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
		r, ok := s.handle(hdr[6], pdu, 0)
		if !ok {
			continue // a dead unit: the gateway times out
		}
		time.Sleep(r.delay)
		resp := r.pdu
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
