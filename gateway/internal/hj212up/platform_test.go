package hj212up

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fieldwatch/fieldwatch/protocols/hj212"
)

// Platform modes.
const (
	modeAck    = iota // answers every frame that asks with a 9014 (C.14)
	modeSilent        // takes the frames, never answers
	modeDown          // accepts a connection and closes it at once
)

// platform is a test HJ 212 platform on a real loopback TCP listener,
// written from the codec: it records every frame it takes and answers as
// its mode says.
type platform struct {
	t      *testing.T
	ln     net.Listener
	mode   atomic.Int32
	frames chan hj212.Packet // every frame taken, in order
	conns  chan struct{}     // one per connection accepted
	mu     sync.Mutex
	open   []net.Conn
	wg     sync.WaitGroup
}

func startPlatform(t *testing.T, mode int32) *platform {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &platform{t: t, ln: ln, frames: make(chan hj212.Packet, 10000), conns: make(chan struct{}, 1000)}
	p.mode.Store(mode)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.stop)
	return p
}

func (p *platform) addr() string { return p.ln.Addr().String() }

func (p *platform) stop() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.open {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *platform) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns <- struct{}{}
		if p.mode.Load() == modeDown {
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

func (p *platform) serve(c net.Conn) {
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
			if !errors.Is(err, net.ErrClosed) {
				return
			}
			return
		}
		p.frames <- pkt
		if p.mode.Load() != modeAck || pkt.NoFlag || !pkt.Flag.Ack() {
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
