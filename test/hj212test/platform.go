// Package hj212test is a test HJ 212 platform (上位机) on a real loopback
// TCP listener, written from the codec, for the gateway's HJ 212 uplink
// tests.
package hj212test

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fieldwatch/fieldwatch/protocols/hj212"
)

// Platform modes.
const (
	ModeAck    = iota // answers every frame that asks with a 9014 (C.14)
	ModeSilent        // takes the frames, never answers
	ModeDown          // accepts a connection and closes it at once
)

// Platform records every frame it takes and answers as its mode says.
type Platform struct {
	t      testing.TB
	ln     net.Listener
	mode   atomic.Int32
	Frames chan hj212.Packet // every frame taken, in order
	Conns  chan struct{}     // one per connection accepted
	mu     sync.Mutex
	open   []net.Conn
	wg     sync.WaitGroup
}

// Start starts a platform in mode; it stops when the test ends.
func Start(t testing.TB, mode int32) *Platform {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Platform{t: t, ln: ln, Frames: make(chan hj212.Packet, 10000), Conns: make(chan struct{}, 1000)}
	p.mode.Store(mode)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.stop)
	return p
}

// Addr is the platform's host:port.
func (p *Platform) Addr() string { return p.ln.Addr().String() }

// Send writes pkt to the logger on the latest connection.
func (p *Platform) Send(pkt hj212.Packet) error {
	frame, err := pkt.Frame()
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.open) == 0 {
		return net.ErrClosed
	}
	_, err = p.open[len(p.open)-1].Write(frame)
	return err
}

// SetMode changes how the platform treats connections and frames from now
// on.
func (p *Platform) SetMode(mode int32) { p.mode.Store(mode) }

func (p *Platform) stop() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.open {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Platform) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.Conns <- struct{}{}
		if p.mode.Load() == ModeDown {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.open = append(p.open, c)
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Platform) serve(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	r := hj212.NewReader(c)
	for {
		pkt, err := r.ReadPacket()
		if err != nil {
			if hj212.Kind(err) != "" {
				p.t.Errorf("platform: the logger sent a frame the codec refuses: %v", err)
				continue
			}
			return // closed, by either side
		}
		p.Frames <- pkt
		if p.mode.Load() != ModeAck || pkt.NoFlag || !pkt.Flag.Ack() {
			continue
		}
		ans := hj212.Packet{QN: pkt.QN, ST: hj212.STSystem, CN: hj212.CNDataResponse, PW: pkt.PW, MN: pkt.MN,
			Flag: hj212.MakeFlag(pkt.Flag.Version(), false, false)}
		frame, err := ans.Frame()
		if err != nil {
			p.t.Errorf("platform: %v", err)
			return
		}
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
}
