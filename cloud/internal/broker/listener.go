package broker

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// listener serves MQTT, plain or over TLS, behind a gate that bounds the
// connections and closes those that do not complete CONNECT in time
// (Mochi's TCP listener has no limit and logs an empty warning line for
// every connection that ends before its session). Over TLS it finishes the
// handshake (within handshakeTimeout) before handing the connection to the
// broker, so a client without an acceptable certificate is refused,
// counted and logged before any MQTT.
type listener struct {
	id, addr string
	config   *tls.Config // nil: plain MQTT
	gate     *gate
	refused  func(remote string, err error) // a TLS handshake failed
	clients  *sync.WaitGroup                // Mochi's, which its Close waits on
	ln       net.Listener
	end      atomic.Bool
	mu       sync.Mutex
}

const handshakeTimeout = 10 * time.Second

var _ listeners.Listener = (*listener)(nil)

func (l *listener) ID() string { return l.id }

func (l *listener) Protocol() string {
	if l.config != nil {
		return "tls"
	}
	return "tcp"
}

func (l *listener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

func (l *listener) Init(*slog.Logger) error {
	ln, err := net.Listen("tcp", l.addr)
	l.ln = ln
	return err
}

func (l *listener) Serve(establish listeners.EstablishFn) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		// Counted in Mochi's wait group under l.mu, which Close takes
		// before Mochi waits: Mochi adds a client to the group only once
		// its connection is running, which would race with that wait.
		l.mu.Lock()
		if l.end.Load() {
			l.mu.Unlock()
			conn.Close()
			return
		}
		l.clients.Add(1)
		l.mu.Unlock()
		gc, ok := l.gate.admit(conn)
		if !ok {
			l.clients.Done()
			continue
		}
		go func() {
			defer l.clients.Done()
			if l.config != nil {
				tc := tls.Server(conn, l.config)
				ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
				err := tc.HandshakeContext(ctx)
				cancel()
				if err != nil {
					gc.logged()
					l.refused(conn.RemoteAddr().String(), err)
					gc.Close()
					return
				}
				gc.Conn = tc
			}
			gc.ended(establish(l.id, gc), l.id)
		}()
	}
}

func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.end.CompareAndSwap(false, true) {
		closeClients(l.id)
	}
	if l.ln != nil {
		l.ln.Close()
	}
	l.gate.closeWaiting()
}
