package testenv

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a target, and can misbehave as a field
// link does: Freeze stops forwarding on the connections open at that
// moment without closing them (a stalled cellular link, a NAT that forgot
// the flow), Cut closes them all (a dropped link). New connections are
// forwarded normally unless Refuse is set. HoldReplies stops only what the
// target sends (a broker's acks reach no one; what the client sends still
// goes through).
type Proxy struct {
	Addr   string // host:port to connect to
	target string
	ln     net.Listener

	mu       sync.Mutex
	conns    map[net.Conn]bool // open connections, both sides
	upstream map[net.Conn]bool // those to the target
	frozen   map[net.Conn]bool // those Freeze stopped
	refuse   bool
	wg       sync.WaitGroup
}

// StartProxy listens on a free loopback port and forwards to target until
// the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]bool{}, frozen: map[net.Conn]bool{},
		upstream: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// URL is the proxy as an MQTT broker URL.
func (p *Proxy) URL() string { return "tcp://" + p.Addr }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up], p.upstream[up] = true, true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies src to dst in small steps, holding while frozen.
func (p *Proxy) pipe(src, dst net.Conn) {
	defer p.wg.Done()
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		for n > 0 {
			p.mu.Lock()
			frozen, open := p.frozen[src], p.conns[src]
			p.mu.Unlock()
			if !open {
				return
			}
			if frozen {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			break
		}
		if err != nil {
			return
		}
	}
}

// Freeze stops forwarding on every connection open now, leaving them
// open. Bytes read meanwhile are held and forwarded after Thaw.
func (p *Proxy) Freeze() {
	p.set(func() {
		for c := range p.conns {
			p.frozen[c] = true
		}
	})
}

// HoldReplies stops forwarding what the target sends on every connection
// open now, leaving them open and the other direction flowing: a client's
// messages arrive, the answers do not. Thaw resumes.
func (p *Proxy) HoldReplies() {
	p.set(func() {
		for c := range p.conns {
			if p.upstream[c] {
				p.frozen[c] = true
			}
		}
	})
}

// Thaw resumes forwarding.
func (p *Proxy) Thaw() { p.set(func() { p.frozen = map[net.Conn]bool{} }) }

// Refuse closes new connections at once (on) or forwards them (off).
func (p *Proxy) Refuse(on bool) { p.set(func() { p.refuse = on }) }

// Cut closes every open connection.
func (p *Proxy) Cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[net.Conn]bool{}
	p.upstream = map[net.Conn]bool{}
	p.frozen = map[net.Conn]bool{}
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

func (p *Proxy) set(f func()) {
	p.mu.Lock()
	f()
	p.mu.Unlock()
}

func (p *Proxy) close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
