package notify

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// startSinkAt starts a sink listening on addr (which nothing served before).
func startSinkAt(t testing.TB, addr string) *sink {
	t.Helper()
	s := &sink{t: t}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// outageRetries is how many failed attempts in a row every receiver makes
// during the outage: enough for the backoff to reach Retry.Max.
const outageRetries = 6

// waitOutage keeps the receivers down until every receiver of h has failed
// outageRetries more delivery attempts, and in a soak run
// (FIELDWATCH_SOAK=1) for at least 10 minutes. It waits for the attempts
// themselves, not for a time in which they ought to happen.
func waitOutage(t *testing.T, h *harness, receivers ...string) {
	t.Helper()
	failed := func(rc string) float64 { return testutilValue(t, h, "fieldwatch_notify_failed_attempts_total", rc) }
	base := map[string]float64{}
	for _, rc := range receivers {
		base[rc] = failed(rc)
	}
	if os.Getenv("FIELDWATCH_SOAK") == "1" {
		time.Sleep(10 * time.Minute) // a soak run's long outage, not a unit test's timing
	}
	eventually(t, fmt.Sprintf("%d failed attempts per receiver during the outage", outageRetries), 60*time.Second, func() bool {
		for _, rc := range receivers {
			if failed(rc) < base[rc]+outageRetries {
				return false
			}
		}
		return true
	})
}

// While the receivers are down (answering 503, or refusing connections) a
// sequence of changes is recorded; once they are back every notification is
// delivered, in outbox order, once per idempotency key — also when the
// notifier is closed mid-outage and opened again on the same file.
func TestDeliveryAfterOutageInOrderOncePerKey(t *testing.T) {
	const changes = 60
	for _, tc := range []struct {
		name    string
		refused bool
		restart bool
	}{
		{"503", false, false},
		{"connection refused", true, false},
		{"503 and restart", false, true},
		{"connection refused and restart", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s *sink
			addr := ""
			if tc.refused {
				addr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
			} else {
				s = newSink(t)
				s.setStatus(http.StatusServiceUnavailable)
				addr = s.srv.Listener.Addr().String()
			}
			url := "http://" + addr
			cfg := testConfig(
				Receiver{Name: "am", AlertmanagerAPI: &AlertmanagerAPI{URL: url, Resend: time.Hour}},
				Receiver{Name: "hook", Webhook: &Webhook{URL: url + "/hook", SecretFile: writeSecret(t, "s3cret")}},
				Receiver{Name: "bureau", AlertmanagerWebhook: &AlertmanagerWebhook{URL: url + "/v4"}})
			cfg.GroupWait, cfg.GroupInterval = 0, 20*time.Millisecond
			cfg.Retry = Retry{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}
			h := openNotifier(t, "", cfg, nil, nil, true)
			start := time.Now()
			for i := 0; i < changes; i++ {
				seq := uint64(i/5 + 1)
				status := StatusFiring
				if seq%2 == 0 {
					status = StatusResolved
				}
				sev := []string{"yellow", "red"}[(i/10)%2]
				h.update(t, alert(fp(i%5), "TempHigh", fmt.Sprintf("site%d", i%2), sev, seq, status, start))
				if i%5 == 4 {
					// Let the groups see several states: each round of
					// changes is checked before the next one starts.
					eventually(t, "group checks of the changes", 10*time.Second, h.groupsSettled)
				}
			}
			eventually(t, "failed attempts", 10*time.Second, func() bool {
				for _, st := range h.n.Status() {
					if st.LastError == "" {
						return false
					}
				}
				return true
			})
			if tc.restart {
				if err := h.n.Close(); err != nil {
					t.Fatal(err)
				}
				h = openNotifier(t, h.path, cfg, nil, nil, true)
			}
			// Every group has seen the last change, so once the queues are
			// empty nothing more is queued: the outbox read below is final.
			eventually(t, "group checks of the changes", 10*time.Second, h.groupsSettled)
			waitOutage(t, h, "am", "hook", "bureau")
			if tc.refused {
				s = startSinkAt(t, addr)
			} else {
				s.setStatus(0)
			}
			back := time.Now()
			eventually(t, "empty queues", 60*time.Second, func() bool {
				for _, st := range h.n.Status() {
					if st.Queue > 0 {
						return false
					}
				}
				return true
			})
			t.Logf("after the outage: %d requests delivered, the queues empty %v after the receivers came back",
				len(s.got()), time.Since(back).Round(time.Millisecond))
			got := map[string][]string{}
			for _, r := range s.got() {
				got[r.header.Get("X-Receiver-Path")] = append(got[r.header.Get("X-Receiver-Path")], r.header.Get(IdempotencyHeader))
			}
			byPath := map[string]string{"am": "/api/v2/alerts", "hook": "/hook", "bureau": "/v4"}
			for _, rc := range []string{"am", "hook", "bureau"} {
				var want []string
				for _, row := range h.rows(t, rc, 0) {
					if row.state != 1 {
						t.Errorf("%s: row %d (%s) not delivered: state %d", rc, row.seq, row.key, row.state)
					}
					want = append(want, row.key)
				}
				if rc == "am" && len(want) != changes {
					t.Errorf("am: %d notifications queued; want one per change, %d", len(want), changes)
				}
				if len(want) == 0 {
					t.Errorf("%s: nothing queued", rc)
				}
				if fmt.Sprint(got[byPath[rc]]) != fmt.Sprint(want) {
					t.Errorf("%s delivered\n%v\nwant, in order, once each\n%v", rc, got[byPath[rc]], want)
				}
			}
		})
	}
}

// A restart does not re-page an unchanged group before its repeat
// interval: what was sent is part of the durable group state.
func TestRestartKeepsGroupState(t *testing.T) {
	clk := newClock()
	t0 := clk.Now()
	s := strictSink(t)
	cfg := testConfig(Receiver{Name: "bureau", AlertmanagerWebhook: &AlertmanagerWebhook{URL: s.srv.URL}},
		Receiver{Name: "hook", Webhook: &Webhook{URL: s.srv.URL, SecretFile: writeSecret(t, "k")}})
	s.check = nil
	h := openNotifier(t, "", cfg, clk.Now, nil, false)
	h.update(t, alert(fp(1), "DOLow", "pond1", "orange", 1, StatusFiring, t0))
	clk.Set(t0.Add(30 * time.Second))
	h.n.tick(context.Background())
	if n := len(h.rows(t, "bureau", 0)) + len(h.rows(t, "hook", 0)); n != 2 {
		t.Fatalf("%d messages queued; want 2", n)
	}
	if err := h.n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{{10 * time.Minute, 2}, {45 * time.Minute, 2}, {61 * time.Minute, 4}} { // orange repeats after 1h
		clk.Set(t0.Add(tc.at))
		h = openNotifier(t, h.path, cfg, clk.Now, nil, false)
		h.n.tick(context.Background())
		n := len(h.rows(t, "bureau", 0)) + len(h.rows(t, "hook", 0))
		if n != tc.want {
			t.Fatalf("after a restart at t0+%v: %d messages queued; want %d", tc.at, n, tc.want)
		}
		if err := h.n.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
