package hj212listen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/ingest"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/sqlite"
	"github.com/fieldwatch/fieldwatch/internal/secretfile"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// wait bounds every wait of these tests for a peer.
const wait = 5 * time.Second

// judged records the batches the early-warning step was given (the real
// engine is tested in alert/engine; here what matters is how often).
type judged struct {
	mu sync.Mutex
	n  map[string]int // stream → batches judged
}

func (j *judged) Observe(_ context.Context, bs ...*telemetry.Batch) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, b := range bs {
		j.n[b.Stream]++
	}
	return nil
}

func (j *judged) count(stream string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.n[stream]
}

type rig struct {
	l      *Listener
	st     store.Store
	reg    *registry.Registry
	m      *Metrics
	judged *judged
	logs   *testenv.LogBuffer
	preg   *prometheus.Registry
}

// metric is the value of the series name{labels} in the rig's registry (0
// when absent).
func (r *rig) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := r.preg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// loggerC is the logger of appendix C's frames.
func loggerC() Logger {
	return Logger{MN: mnC, PW: "123456", Station: "river-1", Site: "east", Name: "河东断面", SiteName: "东河"}
}

// start runs a listener on a free loopback port over a real ingestor and
// SQLite store; opts wrap the store (func(store.Store) store.Store) or
// change the options (func(*Options)).
func start(t testing.TB, cfg Config, opts ...any) *rig {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Loggers == nil {
		cfg.Loggers = []Logger{loggerC()}
	}
	var rep yamlconf.Report
	idle := cfg.IdleTimeout // tests go below the configurable minimum
	cfg.IdleTimeout = 0
	cfg.Validate(&rep, "hj212")
	cfg.IdleTimeout = idle
	cfg.Load(&rep, "hj212", func(string, *secretfile.Loose) {})
	if err := rep.Err("test", nil); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var under store.Store = st
	var change []func(*Options)
	for _, o := range opts {
		switch o := o.(type) {
		case func(store.Store) store.Store:
			under = o(under)
		case func(*Options):
			change = append(change, o)
		default:
			t.Fatalf("start: option %T", o)
		}
	}
	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	reg := registry.New()
	j := &judged{n: map[string]int{}}
	in := ingest.New(ingest.Options{Store: under, Registry: reg, Alerts: j, Log: log,
		Metrics: ingest.NewMetrics(prometheus.NewRegistry())})
	preg := prometheus.NewRegistry()
	m := NewMetrics(preg, log)
	o := Options{Config: &cfg, Ingest: in, Registry: reg, Log: log, Metrics: m}
	for _, f := range change {
		f(&o)
	}
	l, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return &rig{l: l, st: st, reg: reg, m: m, judged: j, logs: logs, preg: preg}
}

// peer is a test data logger on one connection.
type peer struct {
	t  testing.TB
	c  net.Conn
	rd *hj212.Reader
}

func dial(t testing.TB, addr string) *peer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, c: c, rd: hj212.NewReader(c)}
}

func (p *peer) send(frame string) {
	p.t.Helper()
	p.c.SetWriteDeadline(time.Now().Add(wait))
	if _, err := p.c.Write([]byte(frame)); err != nil {
		p.t.Fatal(err)
	}
}

// next reads the platform's next frame.
func (p *peer) next() (string, hj212.Packet) {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(wait))
	data, err := p.rd.Next()
	if err != nil {
		p.t.Fatalf("reading the platform's answer: %v", err)
	}
	frame, _ := hj212.Pack(data)
	pk, err := hj212.DecodePacket(data)
	if err != nil {
		p.t.Fatal(err)
	}
	return string(frame), pk
}

// closed waits for the platform to close the connection.
func (p *peer) closed() {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(wait))
	var b [64]byte
	for {
		_, err := p.c.Read(b[:])
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			p.t.Fatal("the platform did not close the connection")
		}
		return
	}
}

// frame builds a data frame of logger mn with the codec.
func frame(t testing.TB, mn, pw, cn string, qn string, dataTime string, items ...hj212.Item) string {
	t.Helper()
	p := hj212.Packet{QN: qn, ST: hj212.STSurfaceWater, CN: cn, PW: pw, MN: mn, Flag: hj212.MakeFlag(hj212.Version2017, false, true),
		CP: append(hj212.CP{{{Name: "DataTime", Value: dataTime}}}, items...)}
	f, err := p.Frame()
	if err != nil {
		t.Fatal(err)
	}
	return string(f)
}

func (r *rig) series(t *testing.T, station, device, metric string) []store.Sample {
	t.Helper()
	s, err := r.st.Series(context.Background(), store.SeriesQuery{Gateway: station, Device: device, Metric: metric,
		From: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func refusedCount(m *Metrics, kind string) float64 {
	return testutil.ToFloat64(m.refused.Vec().WithLabelValues(kind))
}

// The standard's own exchange: C.14's real-time upload is stored under the
// logger's station and answered with C.14's 9014, byte for byte; sent again
// (a lost answer), it is answered again but neither written nor judged
// twice; C.50's split hour data is stored part by part.
func TestStandardExchange(t *testing.T) {
	r := start(t, Config{})
	p := dial(t, r.l.Addr().String())
	p.send(frameC14)
	if got, _ := p.next(); got != answerC14 {
		t.Fatalf("answer %q, want C.14's %q", got, answerC14)
	}
	st, ok := r.reg.Station("river-1")
	if !ok || st.State != registry.Online || st.Name != "河东断面" || st.SiteName != "东河" {
		t.Fatalf("station %+v, want online while connected, with its names", st)
	}
	p.send(frameC14)
	if got, _ := p.next(); got != answerC14 {
		t.Fatalf("answer to the resend %q", got)
	}
	ph := r.series(t, "river-1", mnC, "water_ph")
	if len(ph) != 1 || *ph[0].Value != 7.1 || !ph[0].Time.Equal(time.Date(2016, 8, 1, 0, 58, 57, 0, time.UTC)) {
		t.Fatalf("water_ph %+v", ph)
	}
	if cod := r.series(t, "river-1", mnC, "cod"); len(cod) != 1 || cod[0].Unit != "mg/L" {
		t.Fatalf("cod %+v", cod)
	}
	stream := "hj212-" + mnC + "-2011"
	if n := r.judged.count(stream); n != 1 {
		t.Fatalf("judged %d times, want once", n)
	}
	if d := testutil.ToFloat64(r.m.duplicates); d != 1 {
		t.Fatalf("duplicates %v", d)
	}
	if n := testutil.ToFloat64(r.m.readings); n != 2 {
		t.Fatalf("readings %v, want 2", n)
	}

	p.send(frameC50a)
	if _, a := p.next(); a.CN != hj212.CNDataResponse || a.QN != "20160801085857534" {
		t.Fatalf("answer to part 1: %+v", a)
	}
	p.send(frameC50b)
	if _, a := p.next(); a.CN != hj212.CNDataResponse || a.QN != "20160801085857535" {
		t.Fatalf("answer to part 2: %+v", a)
	}
	for _, m := range []string{"wastewater_flow_hour_avg", "water_ph_hour_max", "cod_hour_cou"} {
		if s := r.series(t, "river-1", mnC, m); len(s) != 1 || !s[0].Time.Equal(time.Date(2016, 8, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: %+v", m, s)
		}
	}
	if d := testutil.ToFloat64(r.m.duplicates); d != 1 {
		t.Fatalf("the second part was taken for a resend of the first: duplicates %v", d)
	}

	// Without A (Flag=4) nothing is answered: the next answer is the
	// heartbeat's.
	quiet := strings.Replace(frame(t, mnC, "123456", "2011", "20160801090000000", "20160801090000",
		hj212.FactorItem("w01001", "Rtd", "7.3")), "Flag=5", "Flag=4", 1)
	quiet = repack(t, quiet)
	p.send(quiet)
	hb := hj212.Packet{QN: "20160801090001000", ST: hj212.STSurfaceWater, CN: hj212.CNHeartbeat, PW: "123456", MN: mnC,
		Flag: hj212.MakeFlag(hj212.Version2025, false, true)}
	f, _ := hb.Frame()
	p.send(string(f))
	if _, a := p.next(); a.CN != hj212.CNNoticeResponse || a.QN != hb.QN || a.Flag != hj212.MakeFlag(hj212.Version2025, false, false) {
		t.Fatalf("answer to the heartbeat: %+v", a)
	}
	if s := r.series(t, "river-1", mnC, "water_ph"); len(s) != 2 {
		t.Fatalf("the upload without A was not stored: %+v", s)
	}

	r.l.Close()
	if st, _ := r.reg.Station("river-1"); st.State != registry.Offline {
		t.Fatalf("station %s after its logger left, want offline", st.State)
	}
}

// repack recomputes a frame's length and CRC after an edit.
func repack(t *testing.T, frame string) string {
	t.Helper()
	data := frame[6 : len(frame)-6]
	f, err := hj212.Pack([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return string(f)
}

// Every kind of bad input is refused and counted, none is answered, and the
// good frame behind them on the same connection is still taken.
func TestRefusedByKind(t *testing.T) {
	r := start(t, Config{})
	p := dial(t, r.l.Addr().String())
	good := func(qn, v string) string {
		return frame(t, mnC, "123456", "2011", qn, "20260101080000", hj212.FactorItem("w01001", "Rtd", v, "Flag", "N"))
	}
	badCRC := good("20260101080000001", "7.0")
	badCRC = badCRC[:len(badCRC)-6] + "0000\r\n"
	if badCRC == good("20260101080000001", "7.0") {
		t.Fatal("the CRC did not change")
	}
	syntax, _ := hj212.Pack([]byte("QN=20260101080000002;ST=21;CN=2011;PW=123456;MN=" + mnC + ";Flag=5;CP=&&DataTime=20260101080000;;w01001-Rtd=7&&"))
	cases := []struct{ kind, input string }{
		{hj212.KindGarbage, "GET / HTTP/1.1\r\n"},
		{hj212.KindCRC, badCRC},
		{hj212.KindSyntax, string(syntax)},
		{hj212.KindLength, "##0005QN=1;&&0000\r\n"},
		{KindUnknownMN, frame(t, "STRANGER01", "123456", "2011", "20260101080000003", "20260101080000", hj212.FactorItem("w01001", "Rtd", "7"))},
		{KindWrongPW, frame(t, mnC, "654321", "2011", "20260101080000004", "20260101080000", hj212.FactorItem("w01001", "Rtd", "7"))},
		{KindValue, good("20260101080000005", "7.0x")},
		{KindDataTime, frame(t, mnC, "123456", "2011", "20260101080000006", "20261301080000", hj212.FactorItem("w01001", "Rtd", "7"))},
	}
	for _, c := range cases {
		if c.input == "" {
			t.Fatalf("%s: no input", c.kind)
		}
		p.send(c.input)
	}
	p.send(good("20260101080000009", "7.2"))
	if _, a := p.next(); a.QN != "20260101080000009" || a.CN != hj212.CNDataResponse {
		t.Fatalf("first answer %+v: a refused frame was answered, or the good one was not", a)
	}
	for _, c := range cases {
		if n := refusedCount(r.m, c.kind); n != 1 {
			t.Errorf("refused{kind=%s} = %v, want 1", c.kind, n)
		}
	}
	if s := r.series(t, "river-1", mnC, "water_ph"); len(s) != 1 || *s[0].Value != 7.2 {
		t.Fatalf("stored %+v, want only the good frame's 7.2", s)
	}
	if !strings.Contains(r.logs.String(), "kind=wrong_pw") || strings.Contains(r.logs.String(), "654321") {
		t.Fatalf("the refusal log must name the kind and never the password:\n%s", r.logs)
	}
}

// Many loggers report at once while hostile peers send garbage, an endless
// line and a frame that never ends: every good frame is answered in time.
func TestConcurrentLoggersBesideHostilePeers(t *testing.T) {
	const n = 20
	var loggers []Logger
	for i := range n {
		loggers = append(loggers, Logger{MN: fmt.Sprintf("LOGGER%04d", i), PW: "pw" + fmt.Sprint(i), Station: fmt.Sprintf("st-%d", i)})
	}
	r := start(t, Config{Loggers: loggers})
	addr := r.l.Addr().String()
	stop := make(chan struct{})
	var hostile sync.WaitGroup
	flood := func(chunk []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		hostile.Add(1)
		go func() {
			defer hostile.Done()
			defer c.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
				if _, err := c.Write(chunk); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						continue
					}
					return
				}
			}
		}()
	}
	flood([]byte("garbage without any frame in it\r\n"))
	flood(append([]byte("##0100"), []byte(strings.Repeat("A", 4096))...)) // a line that never ends
	slow := dial(t, addr)
	slow.send("##0218QN=2016") // a frame that never ends
	t.Cleanup(func() { close(stop); hostile.Wait() })

	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := dial(t, addr)
			for k := range 5 {
				qn := fmt.Sprintf("202601010800%02d%03d", k, i)
				p.send(frame(t, loggers[i].MN, loggers[i].PW, "2011", qn, fmt.Sprintf("202601010800%02d", k),
					hj212.FactorItem("w01009", "Rtd", fmt.Sprintf("%d.%d", i, k), "Flag", "N")))
				if _, a := p.next(); a.QN != qn {
					t.Errorf("logger %d: answer %s to %s", i, a.QN, qn)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if s := r.series(t, fmt.Sprintf("st-%d", i), loggers[i].MN, "dissolved_oxygen"); len(s) != 5 {
			t.Errorf("logger %d: %d readings stored, want 5", i, len(s))
		}
	}
	if refusedCount(r.m, hj212.KindGarbage) == 0 || refusedCount(r.m, hj212.KindOversize) == 0 {
		t.Errorf("garbage %v, oversize %v: the hostile peers were not refused", refusedCount(r.m, hj212.KindGarbage),
			refusedCount(r.m, hj212.KindOversize))
	}
}

// A peer that sends no good frame is closed after idle_timeout, however
// it trickles bytes or keeps sending frames that are refused; a logger that reconnects closes its older connection.
func TestIdleAndReconnect(t *testing.T) {
	r := start(t, Config{IdleTimeout: 300 * time.Millisecond})
	addr := r.l.Addr().String()
	silent := dial(t, addr)
	trickle := dial(t, addr)
	go func() {
		for _, b := range []byte("##0218QN=201608010858") {
			if _, err := trickle.c.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // the slowloris itself, not a wait of the test
		}
	}()
	refused := dial(t, addr) // frames, but every one refused
	stranger := frame(t, "STRANGER01", "123456", "2011", "20260101080000001", "20260101080000", hj212.FactorItem("w01001", "Rtd", "7"))
	go func() {
		for {
			if _, err := refused.c.Write([]byte(stranger)); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // the peer's pace, not a wait of the test
		}
	}()
	began := time.Now()
	silent.closed()
	trickle.closed()
	refused.closed()
	if d := time.Since(began); d < 250*time.Millisecond {
		t.Fatalf("closed after %v, before idle_timeout", d)
	}

	r = start(t, Config{}) // idle_timeout no longer short: the newer connection must stay
	addr = r.l.Addr().String()
	first := dial(t, addr)
	first.send(frameC14)
	first.next()
	second := dial(t, addr)
	second.send(frameC50a)
	second.next()
	first.closed()
	if st, _ := r.reg.Station("river-1"); st.State != registry.Online {
		t.Fatalf("station %s after the older connection closed, want online (the newer one is open)", st.State)
	}
}

// Connections beyond the caps are closed at once and counted; those
// within them are served.
func TestConnectionCaps(t *testing.T) {
	// Connections are admitted by their own goroutines, in no set order:
	// which one of n+1 is refused is not known, only that one is.
	overPending := func(t *testing.T, r *rig, n int) {
		var ps []*peer
		for range n + 1 {
			ps = append(ps, dial(t, r.l.Addr().String()))
		}
		gone := oneClosed(t, ps)
		if c := testutil.ToFloat64(r.m.pendingRefused); c != 1 {
			t.Fatalf("pending refused %v", c)
		}
		for i, p := range ps {
			if i != gone {
				p.send(frameC14)
				if got, _ := p.next(); got != answerC14 {
					t.Fatalf("connection %d within the cap: answer %q", i, got)
				}
			}
		}
	}
	t.Run("pending per address", func(t *testing.T) {
		overPending(t, start(t, Config{MaxPendingPerAddress: 4}), 4)
	})
	t.Run("pending in all", func(t *testing.T) {
		r := start(t, Config{MaxConnections: 10, MaxPending: 2})
		p := dial(t, r.l.Addr().String())
		p.send(frameC14) // no longer pending once answered
		p.next()
		overPending(t, r, 2)
	})
	t.Run("max connections", func(t *testing.T) {
		r := start(t, Config{MaxConnections: 1})
		p := dial(t, r.l.Addr().String())
		p.send(frameC14)
		p.next()
		dial(t, r.l.Addr().String()).closed()
		if n := r.metric(t, "fieldwatch_hj212_connections_total", "result", "over_cap"); n != 1 {
			t.Fatalf("connections over the cap %v", n)
		}
	})
}

// A logger back after an outage is asked for the minute data it missed,
// and what it sends then is stored once.
func TestHistoryAfterOutage(t *testing.T) {
	r := start(t, Config{})
	addr := r.l.Addr().String()
	minute := func(qn, dt string, v string) string {
		return frame(t, mnC, "123456", "2051", qn, dt, hj212.FactorItem("w01009", "Avg", v, "Flag", "N"))
	}
	before := dial(t, addr)
	before.send(minute("20260101080000001", "20260101075000", "6.0"))
	before.next()
	before.send(minute("20260101080000002", "20260101080000", "6.1"))
	before.next()
	before.c.Close()

	after := dial(t, addr)
	after.send(minute("20260101090000001", "20260101090000", "6.7"))
	if _, a := after.next(); a.CN != hj212.CNDataResponse {
		t.Fatalf("answer %+v", a)
	}
	_, req := after.next()
	bt, _ := req.CP.Get("BeginTime")
	et, _ := req.CP.Get("EndTime")
	if req.CN != hj212.CNMinute || req.MN != mnC || req.PW != "123456" || !req.Flag.Ack() || bt != "20260101080001" || et != "20260101085959" {
		t.Fatalf("history request %+v (BeginTime %s, EndTime %s)", req, bt, et)
	}
	ack := func(cn, k, v string) string {
		f, _ := hj212.Packet{QN: req.QN, ST: hj212.STSystem, CN: cn, PW: "123456", MN: mnC, Flag: 4,
			CP: hj212.CP{{{Name: k, Value: v}}}}.Frame()
		return string(f)
	}
	after.send(ack(hj212.CNRequestResponse, "QnRtn", "1"))
	// The history, with one record that already arrived (the same data, a
	// new QN): stored once.
	for i, dt := range []string{"20260101080000", "20260101081000", "20260101082000", "20260101083000", "20260101084000", "20260101085000"} {
		qn := fmt.Sprintf("2026010109000100%d", i)
		v := fmt.Sprintf("7.%d", i)
		if i == 0 {
			v = "6.1"
		}
		after.send(minute(qn, dt, v))
		if _, a := after.next(); a.QN != qn {
			t.Fatalf("answer %+v to %s", a, qn)
		}
	}
	after.send(ack(hj212.CNExecResult, "ExeRtn", "1"))
	s := r.series(t, "river-1", mnC, "dissolved_oxygen_minute_avg")
	if len(s) != 8 {
		t.Fatalf("%d minute averages stored, want 8 (07:50 to 09:00): %+v", len(s), s)
	}
	if *s[1].Value != 6.1 {
		t.Fatalf("08:00 is %v, sent as 6.1 twice", *s[1].Value)
	}
	if n := testutil.ToFloat64(r.m.history.WithLabelValues("2051")); n != 1 {
		t.Fatalf("history requests %v", n)
	}
	if d := testutil.ToFloat64(r.m.duplicates); d != 1 {
		t.Fatalf("duplicates %v, want 1 (08:00)", d)
	}
}

// An HJ 212 listener with TLS answers over TLS.
func TestTLS(t *testing.T) {
	ca := testenv.NewCA(t, "hj212 test CA")
	cert := ca.Server(t, "127.0.0.1")
	r := start(t, Config{TLS: &TLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile}})
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: wait}, "tcp", r.l.Addr().String(), &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &peer{t: t, c: c, rd: hj212.NewReader(c)}
	p.send(frameC14)
	if got, _ := p.next(); got != answerC14 {
		t.Fatalf("answer %q", got)
	}
}

// After a restart the cloud remembers a logger's newest minute data from
// the registry (seeded from the store), so an outage that spans the
// restart is asked for too.
func TestHistoryAfterCloudRestart(t *testing.T) {
	r := start(t, Config{})
	v := 6.1
	r.reg.Seed([]store.Sample{{Gateway: "river-1", Device: mnC, Metric: "dissolved_oxygen_minute_avg", Value: &v,
		Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}) // 08:00 Beijing
	p := dial(t, r.l.Addr().String())
	p.send(frame(t, mnC, "123456", "2051", "20260101090000001", "20260101090000", hj212.FactorItem("w01009", "Avg", "6.7")))
	p.next()
	_, req := p.next()
	bt, _ := req.CP.Get("BeginTime")
	et, _ := req.CP.Get("EndTime")
	if req.CN != hj212.CNMinute || bt != "20260101080001" || et != "20260101085959" {
		t.Fatalf("history request %+v (BeginTime %s, EndTime %s)", req, bt, et)
	}
}

// failing is a store whose batch writes fail while fail is set.
type failing struct {
	store.Store
	fail atomic.Bool
}

func (f *failing) WriteGroup(ctx context.Context, g *store.Group) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.Store.WriteGroup(ctx, g)
}

// A frame the store cannot take is not answered, so the logger sends it
// again; sent again once the store is back, it is stored and answered.
func TestNoAnswerWhenStoreFails(t *testing.T) {
	fs := &failing{}
	r := start(t, Config{}, func(s store.Store) store.Store { fs.Store = s; return fs })
	p := dial(t, r.l.Addr().String())
	fs.fail.Store(true)
	p.send(frameC14)
	hb := hj212.Packet{QN: "20160801090001000", ST: hj212.STSurfaceWater, CN: hj212.CNHeartbeat, PW: "123456", MN: mnC,
		Flag: hj212.MakeFlag(hj212.Version2025, false, true)}
	f, _ := hb.Frame()
	p.send(string(f))
	if _, a := p.next(); a.QN != hb.QN {
		t.Fatalf("first answer %+v: the frame the store refused was answered", a)
	}
	if n := testutil.ToFloat64(r.m.storeErrors); n != 1 {
		t.Fatalf("store errors %v", n)
	}
	fs.fail.Store(false)
	p.send(frameC14)
	if got, _ := p.next(); got != answerC14 {
		t.Fatalf("answer to the resend %q", got)
	}
	if s := r.series(t, "river-1", mnC, "water_ph"); len(s) != 1 {
		t.Fatalf("stored %+v", s)
	}
	if d := testutil.ToFloat64(r.m.duplicates); d != 0 {
		t.Fatalf("the resend of a frame never stored was taken for a duplicate")
	}
}

// oneClosed waits for the platform to close one of ps, and returns which;
// it fails when none is closed or more than one.
func oneClosed(t *testing.T, ps []*peer) int {
	t.Helper()
	closed := make(chan int, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		p.c.SetReadDeadline(time.Now().Add(wait))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b [1]byte
			if _, err := p.c.Read(b[:]); err != nil {
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					closed <- i
				}
			}
		}()
	}
	var gone int
	select {
	case gone = <-closed:
	case <-time.After(wait):
		t.Fatal("no connection closed")
	}
	for _, p := range ps {
		p.c.SetReadDeadline(time.Now()) // the other reads end
	}
	wg.Wait()
	if len(closed) > 0 {
		t.Fatalf("connections %d and %d both closed", gone, <-closed)
	}
	return gone
}

// timers is a clock's AfterFunc a test fires by hand.
type timers struct {
	set chan func() // each function scheduled
}

func (tm *timers) AfterFunc(_ time.Duration, f func()) func() bool {
	stopped := atomic.Bool{}
	tm.set <- func() {
		if !stopped.Load() {
			f()
		}
	}
	return func() bool { return !stopped.Swap(true) }
}

// A station goes offline offline_after its last logger left, unless one
// is back in time: a logger that reconnects at once does not make it flap.
func TestOfflineAfter(t *testing.T) {
	tm := &timers{set: make(chan func(), 4)}
	r := start(t, Config{}, func(o *Options) { o.AfterFunc = tm.AfterFunc })
	state := func() string { st, _ := r.reg.Station("river-1"); return st.State }
	scheduled := func() func() {
		t.Helper()
		select {
		case f := <-tm.set:
			return f
		case <-time.After(wait):
			t.Fatal("no offline mark scheduled after the logger left")
		}
		return nil
	}
	p := dial(t, r.l.Addr().String())
	p.send(frameC14)
	p.next()
	p.c.Close()
	fire := scheduled()
	if s := state(); s != registry.Online {
		t.Fatalf("station %s right after its logger left, want online until offline_after", s)
	}
	back := dial(t, r.l.Addr().String())
	back.send(frameC50a)
	back.next()
	fire() // too late: the logger is back
	if s := state(); s != registry.Online {
		t.Fatalf("station %s with its logger back in time", s)
	}
	back.c.Close()
	scheduled()() // offline_after passes
	if s := state(); s != registry.Offline {
		t.Fatalf("station %s after offline_after, want offline", s)
	}
}

// TestSameDataTimeTwice: two different frames of one DataTime — a reading
// that came after its second's frame had gone, or one frame per instrument
// — are each stored; the same frame sent again (a lost 9014, with a new QN)
// is answered and stored once. Numbered by DataTime alone, the second frame
// was answered and never stored.
func TestSameDataTimeTwice(t *testing.T) {
	r := start(t, Config{})
	p := dial(t, r.l.Addr().String())
	answered := func(qn, dataTime string, item hj212.Item) {
		t.Helper()
		p.send(frame(t, mnC, "123456", "2011", qn, dataTime, item))
		if _, a := p.next(); a.CN != hj212.CNDataResponse || a.QN != qn {
			t.Fatalf("answer to %s: %+v", qn, a)
		}
	}
	answered("20160801090000000", "20160801090000", hj212.FactorItem("w01001", "Rtd", "7.3"))
	answered("20160801090001000", "20160801090001", hj212.FactorItem("w01001", "Rtd", "7.4"))
	answered("20160801090002000", "20160801090000", hj212.FactorItem("w01018", "Rtd", "12.5"))
	answered("20160801090003000", "20160801090000", hj212.FactorItem("w01018", "Rtd", "12.5")) // the same data again
	if cod := r.series(t, "river-1", mnC, "cod"); len(cod) != 1 {
		t.Errorf("cod stored %d times, sent once (and again)", len(cod))
	}
	if ph := r.series(t, "river-1", mnC, "water_ph"); len(ph) != 2 {
		t.Errorf("pH stored %d times, sent at two seconds", len(ph))
	}
}
