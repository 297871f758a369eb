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

// tlsListener serves MQTT over TLS. Unlike Mochi's TCP listener with a
// TLS config, it finishes the handshake (within handshakeTimeout) before
// handing the connection to the broker, so a client without an acceptable
// certificate is refused, counted and logged before any MQTT.
type tlsListener struct {
	id, addr string
	config   *tls.Config
	refused  func(remote string, err error)
	ln       net.Listener
	end      atomic.Bool
	mu       sync.Mutex
}

const handshakeTimeout = 10 * time.Second

var _ listeners.Listener = (*tlsListener)(nil)

func (l *tlsListener) ID() string       { return l.id }
func (l *tlsListener) Protocol() string { return "tls" }

func (l *tlsListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

func (l *tlsListener) Init(*slog.Logger) error {
	ln, err := net.Listen("tcp", l.addr)
	l.ln = ln
	return err
}

func (l *tlsListener) Serve(establish listeners.EstablishFn) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		if l.end.Load() {
			conn.Close()
			return
		}
		go func() {
			tc := tls.Server(conn, l.config)
			ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
			err := tc.HandshakeContext(ctx)
			cancel()
			if err != nil {
				l.refused(conn.RemoteAddr().String(), err)
				conn.Close()
				return
			}
			_ = establish(l.id, tc) // the broker logs and counts what goes wrong
		}()
	}
}

func (l *tlsListener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.end.CompareAndSwap(false, true) {
		closeClients(l.id)
	}
	if l.ln != nil {
		l.ln.Close()
	}
}
