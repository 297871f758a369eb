package stationserver

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCapAndShutdown holds two connections on a server capped at two: a
// third is closed at once and counted; cancelling closes the two held ones
// and Serve returns after their handlers.
func TestCapAndShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(prometheus.NewRegistry(), "test")
	ended := make(chan struct{}, 3)
	s := &Server{Proto: "test", MaxConns: 2, Log: slog.New(slog.DiscardHandler), Metrics: m,
		Handle: func(ctx context.Context, c net.Conn) {
			defer func() { ended <- struct{}{} }()
			// Echo lines until the connection closes.
			br := bufio.NewReader(c)
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				c.Write([]byte(l))
			}
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	echo := func(c net.Conn) {
		t.Helper()
		c.Write([]byte("hi\n"))
		if l, err := bufio.NewReader(c).ReadString('\n'); err != nil || l != "hi\n" {
			t.Fatalf("echo: %q, %v", l, err)
		}
	}
	a, b := dial(), dial()
	echo(a)
	echo(b) // both handlers run: the server has counted both
	over := dial()
	if n, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("third connection over the cap: read %d, %v; want EOF", n, err)
	}
	if got := testutil.ToFloat64(m.conns.WithLabelValues("over_cap")); got != 1 {
		t.Errorf("over_cap = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.open); got != 2 {
		t.Errorf("open = %v, want 2", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if len(ended) != 2 {
		t.Fatalf("%d handlers ended, want 2", len(ended))
	}
	for _, c := range []net.Conn{a, b} {
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("held connection after shutdown: %v, want EOF", err)
		}
	}
}

func TestRefusalsCountByKind(t *testing.T) {
	r := NewRefusals(prometheus.NewRegistry(), "test", "help", []string{"crc", "garbage"}, slog.New(slog.DiscardHandler))
	for range 3 {
		r.Refuse("crc", "refused")
	}
	r.Refuse("garbage", "refused")
	if c, g := testutil.ToFloat64(r.Vec().WithLabelValues("crc")), testutil.ToFloat64(r.Vec().WithLabelValues("garbage")); c != 3 || g != 1 {
		t.Fatalf("crc %v garbage %v, want 3 and 1", c, g)
	}
}
