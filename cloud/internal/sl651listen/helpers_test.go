package sl651listen

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/cloud/internal/ingest"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/sqlite"
	"github.com/fieldwatch/fieldwatch/protocols/sl651"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// cst is Beijing time, the stations' clock.
var cst = time.FixedZone("CST", 8*3600)

// wait bounds every wait of these tests.
const wait = 10 * time.Second

// counting is an early-warning engine stand-in that counts what it judges.
type counting struct {
	mu       sync.Mutex
	readings int
}

func (c *counting) Observe(_ context.Context, bs ...*telemetry.Batch) error {
	c.mu.Lock()
	for _, b := range bs {
		c.readings += len(b.Readings)
	}
	c.mu.Unlock()
	return nil
}

func (c *counting) judged() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readings
}

// rig is a running central station on a loopback port, with the real
// intake (ingest.Submit), registry and embedded store behind it.
type rig struct {
	addr   string
	in     *ingest.Ingestor
	l      *Listener
	store  store.Store
	reg    *registry.Registry
	alerts *counting
	prom   *prometheus.Registry
}

// startRig runs a listener with cfg (the defaults filled in, Listen and
// Stations as given) on a new embedded store.
func startRig(t testing.TB, cfg config.SL651) *rig {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return startRigOn(t, cfg, st)
}

// startRigOn is startRig on a given store, with a new intake and registry
// (a restarted cloud).
func startRigOn(t testing.TB, cfg config.SL651, st store.Store) *rig {
	t.Helper()
	def := config.Default().SL651
	if cfg.Timezone == "" {
		cfg.Timezone = def.Timezone
	}
	if cfg.Confirm == "" {
		cfg.Confirm = def.Confirm
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = def.MaxConnections
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = time.Minute
	}
	if cfg.Interval == 0 {
		cfg.Interval = def.Interval
	}
	reg := registry.New()
	prom := prometheus.NewRegistry()
	ev := &counting{}
	log := slog.New(slog.DiscardHandler)
	// The published frames are dated 2059: far ahead, kept all the same.
	in := ingest.New(ingest.Options{Store: st, Registry: reg, Alerts: ev, Log: log, Metrics: ingest.NewMetrics(prom),
		MaxFuture: 100 * 365 * 24 * time.Hour})
	l, err := New(Options{Config: cfg, Sink: in, Registry: reg, Log: log, Reg: prom, MaxRefusals: 8})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("listener did not stop")
		}
	})
	return &rig{addr: ln.Addr().String(), in: in, l: l, store: st, reg: reg, alerts: ev, prom: prom}
}

// conn is a test station's connection.
type conn struct {
	t  testing.TB
	c  net.Conn
	rd *sl651.Reader
}

func (r *rig) dial(t testing.TB) *conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", r.addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(3 * wait))
	return &conn{t: t, c: c, rd: sl651.NewReader(bufio.NewReader(c))}
}

func (c *conn) send(b []byte) {
	c.t.Helper()
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// confirm reads the next frame from the centre and returns its bytes.
func (c *conn) confirm() sl651.Frame {
	c.t.Helper()
	f, err := c.rd.Next()
	if err != nil {
		c.t.Fatalf("reading the confirmation: %v", err)
	}
	return f
}

// closed waits (to the connection's deadline) until the centre closes
// the connection: end of stream, or a reset when the peer was still
// writing.
func (c *conn) closed() bool {
	_, err := c.c.Read(make([]byte, 64))
	for err == nil {
		_, err = c.c.Read(make([]byte, 64))
	}
	return err == io.EOF || errors.Is(err, syscall.ECONNRESET)
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encode(t testing.TB, f sl651.Frame) []byte {
	t.Helper()
	b, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ev is one element value for a built report.
type ev struct {
	id uint16
	v  float64
}

func bcd(v int) byte { return byte(v/10<<4 | v%10) }

func timeItem(enc sl651.Encoding, t time.Time) sl651.Item { return sl651.TimeItem(t, cst, enc) }

func addrItem(enc sl651.Encoding, a sl651.Address) sl651.Item { return sl651.StationItem(a, 'H', enc) }

// report builds a station's report frame with the codec: station address
// group, observation time, the values.
func report(t testing.TB, enc sl651.Encoding, fn uint8, center uint8, a sl651.Address, pw uint16, serial uint16, sent, obs time.Time, vals ...ev) sl651.Frame {
	t.Helper()
	r := sl651.Report{Serial: serial, SendTime: sent, Items: []sl651.Item{addrItem(enc, a), timeItem(enc, obs)}}
	for _, v := range vals {
		it, err := sl651.NumberItem(v.id, v.v, true, enc)
		if err != nil {
			t.Fatal(err)
		}
		r.Items = append(r.Items, it)
	}
	body, err := r.Body(enc, cst)
	if err != nil {
		t.Fatal(err)
	}
	return sl651.Frame{Encoding: enc, Center: center, Station: a, Password: pw, Function: fn, Start: sl651.STX, Body: body, End: sl651.ETX}
}

// latest returns the station's stored samples as "metric=value unit @time".
func (r *rig) latest(t testing.TB, gw string) map[string]string {
	t.Helper()
	ss, err := r.store.Latest(context.Background(), gw, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range ss {
		v := "NaN"
		if s.Value != nil {
			v = fmt.Sprintf("%g", *s.Value)
		}
		out[s.Device+"/"+s.Metric] = strings.TrimSpace(fmt.Sprintf("%s %s @%s", v, s.Unit, s.Time.UTC().Format(time.RFC3339)))
	}
	return out
}

func (r *rig) refused(kind string) float64 {
	return testutil.ToFloat64(r.l.ref.Vec().WithLabelValues(kind))
}

// series returns a stored series from `from` as "15:04 value" (UTC; "-"
// for a reading without a value).
func (r *rig) series(t testing.TB, gw, dev, metric string, from time.Time) []string {
	t.Helper()
	ss, err := r.store.Series(context.Background(), store.SeriesQuery{Gateway: gw, Device: dev, Metric: metric,
		From: from, To: from.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range ss {
		v := "-"
		if s.Value != nil {
			v = fmt.Sprintf("%g", *s.Value)
		}
		out = append(out, s.Time.UTC().Format("15:04")+" "+v)
	}
	return out
}
