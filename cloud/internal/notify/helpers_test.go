package notify

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clock is a controllable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// alert builds a valid alert in site with severity sev.
func alert(fp, name, site, sev string, seq uint64, status string, start time.Time) Alert {
	level := map[string]string{"blue": "4", "yellow": "3", "orange": "2", "red": "1"}[sev]
	a := Alert{Fingerprint: fp, Status: status, StartsAt: start, Seq: seq,
		Labels: map[string]string{"alertname": name, "severity": sev, "level": level, "rule": "r_" + name,
			"site": site, "device": "dev-" + fp[12:]},
		Annotations:  map[string]string{"summary": name + " at " + site, "value": "1.5"},
		GeneratorURL: "http://127.0.0.1:8080/alerts/" + fp}
	if status == StatusResolved {
		a.EndsAt = start.Add(time.Minute)
	}
	return a
}

func fp(i int) string { return fmt.Sprintf("%016x", 0xa1000+i) }

type harness struct {
	n    *Notifier
	path string
	reg  *prometheus.Registry
}

// openNotifier opens a notifier on path (a new file when ""), and runs it
// until the test ends unless run is false.
func openNotifier(t testing.TB, path string, cfg Config, now func() time.Time, pub Publisher, run bool) *harness {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "notify.db")
	}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n, err := Open(context.Background(), Options{Path: path, Config: cfg, Publisher: pub, Log: log, Metrics: reg, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{n: n, path: path, reg: reg}
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { n.Run(ctx); close(done) }()
		t.Cleanup(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(func() { n.Close() })
	return h
}

func (h *harness) update(t testing.TB, as ...Alert) {
	t.Helper()
	if err := h.n.Update(context.Background(), as); err != nil {
		t.Fatal(err)
	}
}

// groupsSettled says whether every grouped receiver's groups have been
// checked since the latest change of each of their alerts: every member is
// firing and notified at its current seq, so no group check will queue
// anything more until a repeat interval passes.
func (h *harness) groupsSettled() bool {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	for _, rc := range h.n.receivers {
		if !rc.cfg.grouped() {
			continue
		}
		for _, g := range rc.groups {
			for fp := range g.members {
				a := h.n.alerts[fp]
				if a == nil || a.Status != StatusFiring || a.Muted {
					return false
				}
				if seq, ok := g.firing[fp]; !ok || seq != a.Seq {
					return false
				}
			}
		}
	}
	return true
}

// outboxRow is a queued message as the tests read it back.
type outboxRow struct {
	seq     uint64
	key     string
	topic   string
	payload []byte
	state   int
}

// rows returns receiver's outbox rows after seq, in order.
func (h *harness) rows(t testing.TB, receiver string, after uint64) []outboxRow {
	t.Helper()
	rs, err := h.n.db.Query(`SELECT seq, key, topic, payload, state FROM notify_outbox WHERE receiver = ? AND seq > ?
		ORDER BY seq`, receiver, after)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []outboxRow
	for rs.Next() {
		var r outboxRow
		if err := rs.Scan(&r.seq, &r.key, &r.topic, &r.payload, &r.state); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// request is one HTTP request a test receiver got.
type request struct {
	header http.Header
	body   []byte
}

// sink is a test HTTP receiver: it records requests, answers with status
// (200 when 0), and passes each request to check, if set.
type sink struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []request
	status int
	check  func(r request) int // optional: returns the status to answer instead
}

func newSink(t testing.TB) *sink {
	s := &sink{t: t}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.t.Errorf("reading request: %v", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	req := request{header: r.Header.Clone(), body: body}
	req.header.Set("X-Receiver-Path", r.URL.Path)
	s.mu.Lock()
	status, check := s.status, s.check
	s.mu.Unlock()
	if status == 0 && check != nil {
		status = check(req)
	}
	if status == 0 || status/100 == 2 {
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
}

func (s *sink) setStatus(code int) {
	s.mu.Lock()
	s.status = code
	s.mu.Unlock()
}

func (s *sink) got() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

// waitFor waits (bounded) until the sink accepted n requests.
func (s *sink) waitFor(t testing.TB, n int, limit time.Duration) []request {
	t.Helper()
	deadline := time.Now().Add(limit)
	for len(s.got()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("receiver got %d requests after %v; want %d", len(s.got()), limit, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s.got()
}

// eventually polls cond every 10 ms for at most limit.
func eventually(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting: %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testConfig(receivers ...Receiver) Config {
	c := DefaultConfig()
	c.Retry = Retry{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	c.Receivers = receivers
	return c
}

func writeSecret(t testing.TB, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testutilValue reads a counter or gauge by its label values, in label-name order.
func testutilValue(t testing.TB, h *harness, name string, labelValues ...string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var vals []string
			for _, lp := range m.GetLabel() {
				vals = append(vals, lp.GetValue())
			}
			if fmt.Sprint(vals) == fmt.Sprint(labelValues) {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("metric %s%v not found", name, labelValues)
	return 0
}
