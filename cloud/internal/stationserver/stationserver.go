// Package stationserver serves the TCP connections of field stations that
// speak a bureau's protocol to the cloud (SL 651 telemetry stations, HJ 212
// data loggers): one goroutine per connection, so a slow or hostile station
// holds only its own; a cap on connections, past which new ones are closed
// at once and counted; a shutdown that closes every connection and waits
// for their handlers; and Refusals, counters by kind with throttled log
// lines, for what a protocol's handler refuses.
//
// The protocol is the handler's: it reads frames with its own deadlines,
// answers, and returns when the connection is done.
package stationserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/internal/throttle"
)

// Metrics are a server's connection metrics, named after its protocol:
// fieldwatch_<proto>_connections (open now) and
// fieldwatch_<proto>_connections_total{result="accepted"|"over_cap"}.
type Metrics struct {
	open  prometheus.Gauge
	conns *prometheus.CounterVec
}

// NewMetrics registers the connection metrics of protocol proto on reg.
func NewMetrics(reg prometheus.Registerer, proto string) *Metrics {
	m := &Metrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fieldwatch_" + proto + "_connections",
			Help: "Station connections open now."}),
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_" + proto + "_connections_total",
			Help: "Station connections by result: accepted, or over_cap (closed at once: max_connections were open)."},
			[]string{"result"}),
	}
	reg.MustRegister(m.open, m.conns)
	m.conns.WithLabelValues("accepted")
	m.conns.WithLabelValues("over_cap")
	return m
}

// Server accepts connections and hands each to Handle on its own goroutine.
type Server struct {
	// Proto names the protocol in logs ("sl651").
	Proto string
	// MaxConns bounds the connections open at once (≥ 1).
	MaxConns int
	// Handle serves one connection until it is done or ctx ends; the
	// server closes the connection after it returns.
	Handle  func(ctx context.Context, c net.Conn)
	Log     *slog.Logger
	Metrics *Metrics

	throttle *throttle.Throttle
}

// Serve accepts on ln until ctx is done, then closes ln and every open
// connection and waits for their handlers. An accept error other than the
// listener's closing (too many open files) is logged and retried after a
// short backoff. It returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.throttle = throttle.New(10 * time.Second)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			// Out of file descriptors or the like: wait a little and go
			// on, as net/http does; the stations retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if ok, n := s.throttle.Allow("accept"); ok {
				s.Log.Error("cannot accept a station connection; retrying", "proto", s.Proto, "err", err,
					"retry_in", backoff, "similar_suppressed", n)
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			continue
		}
		backoff = 0
		mu.Lock()
		if len(conns) >= s.MaxConns || ctx.Err() != nil {
			mu.Unlock()
			// Counted before the close, so whoever sees the close sees the count.
			s.Metrics.conns.WithLabelValues("over_cap").Inc()
			c.Close()
			if ok, n := s.throttle.Allow("over_cap"); ok {
				s.Log.Warn("station connection closed: max_connections are open", "proto", s.Proto,
					"remote", c.RemoteAddr().String(), "max_connections", s.MaxConns, "similar_suppressed", n)
			}
			continue
		}
		conns[c] = true
		mu.Unlock()
		s.Metrics.conns.WithLabelValues("accepted").Inc()
		s.Metrics.open.Inc()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Metrics.open.Dec()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			s.Handle(cctx, c)
		}()
	}
	cancel()
	ln.Close()
	mu.Lock()
	for c := range conns {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
	return nil
}

// Refusals counts what a protocol's handler refuses, by kind, in
// fieldwatch_<proto>_refused_total{kind}, and logs it at most once per kind
// every 10 s with the number of lines held back, so a flood of bad frames
// cannot fill the disk.
type Refusals struct {
	proto    string
	vec      *prometheus.CounterVec
	log      *slog.Logger
	throttle *throttle.Throttle
}

// NewRefusals registers the counter on reg, every kind in kinds present
// from the start (a dashboard can rate() it).
func NewRefusals(reg prometheus.Registerer, proto, help string, kinds []string, log *slog.Logger) *Refusals {
	r := &Refusals{proto: proto, log: log, throttle: throttle.New(10 * time.Second),
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_" + proto + "_refused_total", Help: help},
			[]string{"kind"})}
	reg.MustRegister(r.vec)
	for _, k := range kinds {
		r.vec.WithLabelValues(k)
	}
	return r
}

// Refuse counts one refusal of kind and logs msg with attrs (throttled).
func (r *Refusals) Refuse(kind, msg string, attrs ...any) {
	r.vec.WithLabelValues(kind).Inc()
	if ok, n := r.throttle.Allow(kind); ok {
		r.log.Warn(msg, append([]any{"proto", r.proto, "kind", kind, "similar_suppressed", n}, attrs...)...)
	}
}

// Vec is the counter (for tests).
func (r *Refusals) Vec() *prometheus.CounterVec { return r.vec }
