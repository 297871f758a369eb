package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// strictV4 mirrors Alertmanager 0.25's notify/webhook.Message (with the
// embedded template.Data) independently of the package's own type; times
// stay strings so their format is checked.
type strictV4 struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []strictV4Alert   `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
}

type strictV4Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

var (
	v4Fields      = []string{"receiver", "status", "alerts", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "version", "groupKey", "truncatedAlerts"}
	v4AlertFields = []string{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
)

// decodeV4 decodes body as a v4 message, strictly: unknown or missing
// fields, a wrong version and bad times are errors.
func decodeV4(body []byte) (*strictV4, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	for _, f := range v4Fields {
		if _, ok := raw[f]; !ok {
			return nil, fmt.Errorf("field %s missing", f)
		}
	}
	var alerts []map[string]json.RawMessage
	if err := json.Unmarshal(raw["alerts"], &alerts); err != nil {
		return nil, err
	}
	for i, a := range alerts {
		for _, f := range v4AlertFields {
			if _, ok := a[f]; !ok {
				return nil, fmt.Errorf("alerts[%d].%s missing", i, f)
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var m strictV4
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	switch {
	case m.Version != "4":
		return nil, fmt.Errorf("version %q", m.Version)
	case m.Status != "firing" && m.Status != "resolved":
		return nil, fmt.Errorf("status %q", m.Status)
	case m.GroupKey == "" || m.Receiver == "":
		return nil, fmt.Errorf("empty groupKey or receiver")
	case m.GroupLabels == nil || m.CommonLabels == nil || m.CommonAnnotations == nil:
		return nil, fmt.Errorf("null label set")
	}
	anyFiring := false
	for i, a := range m.Alerts {
		if _, err := time.Parse(time.RFC3339Nano, a.StartsAt); err != nil {
			return nil, fmt.Errorf("alerts[%d].startsAt: %v", i, err)
		}
		end, err := time.Parse(time.RFC3339Nano, a.EndsAt)
		if err != nil {
			return nil, fmt.Errorf("alerts[%d].endsAt: %v", i, err)
		}
		switch a.Status {
		case "firing":
			anyFiring = true
			if a.EndsAt != "0001-01-01T00:00:00Z" {
				return nil, fmt.Errorf("alerts[%d] firing with endsAt %s", i, a.EndsAt)
			}
		case "resolved":
			if end.IsZero() {
				return nil, fmt.Errorf("alerts[%d] resolved without endsAt", i)
			}
		default:
			return nil, fmt.Errorf("alerts[%d].status %q", i, a.Status)
		}
		if len(a.Fingerprint) != 16 || a.Labels["alertname"] == "" {
			return nil, fmt.Errorf("alerts[%d]: fingerprint %q labels %v", i, a.Fingerprint, a.Labels)
		}
	}
	if anyFiring != (m.Status == "firing") {
		return nil, fmt.Errorf("status %s does not match the alerts", m.Status)
	}
	return &m, nil
}

// strictSink is a v4 receiver failing the test on any malformed message.
func strictSink(t *testing.T) *sink {
	s := newSink(t)
	s.check = func(r request) int {
		if _, err := decodeV4(r.body); err != nil {
			t.Errorf("receiver refused message: %v\n%s", err, r.body)
			return http.StatusBadRequest
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if ua := r.header.Get("User-Agent"); !strings.HasPrefix(ua, "fieldwatch/") {
			t.Errorf("User-Agent %q", ua)
		}
		if r.header.Get(IdempotencyHeader) == "" {
			t.Errorf("no Idempotency-Key")
		}
		return 0
	}
	return s
}

// wantMsg describes one queued message: its status, the fingerprints of
// its alerts (as "fp/status") and truncatedAlerts.
type wantMsg struct {
	status    string
	alerts    []string
	truncated uint64
}

// groupStep sets the clock to t0+at, applies the updates, runs a
// scheduler tick and expects exactly want to be queued by it.
type groupStep struct {
	at     time.Duration
	update []Alert
	want   []wantMsg
}

func TestGroupingFollowsAlertmanagerTimers(t *testing.T) {
	t0 := newClock().Now()
	red := func(i int, seq uint64) Alert { return alert(fp(i), "DOLow", "pond1", "red", seq, StatusFiring, t0) }
	resolved := func(i int, seq uint64) Alert {
		a := alert(fp(i), "DOLow", "pond1", "red", seq, StatusResolved, t0)
		a.EndsAt = t0.Add(time.Hour)
		return a
	}
	acked := func(a Alert) Alert { a.Acknowledged = true; return a }
	muted := func(a Alert) Alert { a.Muted = true; return a }
	other := alert(fp(9), "DOLow", "pond2", "red", 1, StatusFiring, t0)
	f := func(i int) string { return fp(i) + "/firing" }
	r := func(i int) string { return fp(i) + "/resolved" }
	min := time.Minute
	tests := []struct {
		name         string
		maxAlerts    int
		sendResolved bool
		groupBy      []string
		steps        []groupStep
	}{
		{name: "wait, interval, repeat, ack, resolve", maxAlerts: 2, sendResolved: true, steps: []groupStep{
			{at: 0, update: []Alert{red(1, 1), red(2, 1), other}},
			{at: 29 * time.Second},
			{at: 30 * time.Second, want: []wantMsg{{"firing", []string{f(1), f(2)}, 0}, {"firing", []string{fp(9) + "/firing"}, 0}}},
			{at: 31 * time.Second, update: []Alert{red(3, 1)}},
			{at: 5 * min},
			{at: 5*min + 30*time.Second, want: []wantMsg{{"firing", []string{f(1), f(2)}, 1}}},
			{at: 10*min + 30*time.Second}, {at: 30 * min},
			{at: 35*min + 30*time.Second, want: []wantMsg{{"firing", []string{f(1), f(2)}, 1}, {"firing", []string{fp(9) + "/firing"}, 0}}}, // repeats (red: 30m)
			{at: 36 * min, update: []Alert{acked(red(1, 1)), acked(red(2, 1)), acked(red(3, 1)), acked(other)}},
			{at: 66 * min}, {at: 96 * min}, // acknowledged: no repeat
			{at: 100 * min, update: []Alert{resolved(1, 2)}},
			{at: 101 * min, want: []wantMsg{{"firing", []string{f(2), f(3)}, 1}}}, // with the resolved one truncated
			{at: 102 * min, update: []Alert{resolved(2, 2), resolved(3, 2)}},
			{at: 106 * min, want: []wantMsg{{"resolved", []string{r(2), r(3)}, 0}}},
			{at: 200 * min}, // forgotten
		}},
		{name: "muted left out, its resolution sent", sendResolved: true, steps: []groupStep{
			{at: 0, update: []Alert{red(1, 1), muted(red(2, 1))}},
			{at: 30 * time.Second, want: []wantMsg{{"firing", []string{f(1)}, 0}}},
			{at: 31 * time.Second, update: []Alert{muted(red(1, 1))}},
			{at: 40 * min}, // muted: no repeat
			{at: 41 * min, update: []Alert{resolved(1, 2), resolved(2, 2)}},
			{at: 45 * min, want: []wantMsg{{"resolved", []string{r(1)}, 0}}}, // 2 was never notified
		}},
		{name: "send_resolved false", sendResolved: false, steps: []groupStep{
			{at: 0, update: []Alert{red(1, 1), red(2, 1)}},
			{at: 30 * time.Second, want: []wantMsg{{"firing", []string{f(1), f(2)}, 0}}},
			{at: min, update: []Alert{resolved(1, 2)}},
			{at: 6 * min}, // a resolution alone is not sent
			{at: 7 * min, update: []Alert{resolved(2, 2)}},
			{at: 11 * min},
			{at: 12 * min, update: []Alert{red(1, 3)}}, // fires again: a new group
			{at: 12*min + 30*time.Second, want: []wantMsg{{"firing", []string{f(1)}, 0}}},
		}},
		{name: "every alert its own group", sendResolved: true, groupBy: []string{"..."}, steps: []groupStep{
			{at: 0, update: []Alert{red(1, 1), red(2, 1)}},
			{at: 30 * time.Second, want: []wantMsg{{"firing", []string{f(1)}, 0}, {"firing", []string{f(2)}, 0}}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			s := strictSink(t)
			cfg := testConfig(Receiver{Name: "bureau", AlertmanagerWebhook: &AlertmanagerWebhook{URL: s.srv.URL,
				MaxAlerts: tc.maxAlerts, SendResolved: &tc.sendResolved}})
			if tc.groupBy != nil {
				cfg.GroupBy = tc.groupBy
			}
			h := openNotifier(t, "", cfg, clk.Now, nil, true)
			var seq uint64
			total := 0
			for i, st := range tc.steps {
				clk.Set(t0.Add(st.at))
				if st.update != nil {
					h.update(t, st.update...)
				}
				h.n.tick(context.Background())
				rows := h.rows(t, "bureau", seq)
				got := make([]wantMsg, 0, len(rows))
				for _, row := range rows {
					seq = row.seq
					m, err := decodeV4(row.payload)
					if err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					if want := m.GroupKey + ":"; !strings.HasPrefix(row.key, want) {
						t.Errorf("step %d: key %q does not start with the group key", i, row.key)
					}
					w := wantMsg{status: m.Status, truncated: m.TruncatedAlerts}
					for _, a := range m.Alerts {
						w.alerts = append(w.alerts, a.Fingerprint+"/"+a.Status)
					}
					got = append(got, w)
				}
				sortMsgs(got)
				if fmt.Sprint(got) != fmt.Sprint(st.want) {
					t.Fatalf("step %d (t0+%v): queued %v; want %v", i, st.at, got, st.want)
				}
				total += len(got)
			}
			reqs := s.waitFor(t, total, 10*time.Second)
			keys := map[string]bool{}
			for _, r := range reqs {
				k := r.header.Get(IdempotencyHeader)
				if keys[k] {
					t.Errorf("key %s delivered twice", k)
				}
				keys[k] = true
			}
		})
	}
}

func sortMsgs(ms []wantMsg) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && fmt.Sprint(ms[j].alerts) < fmt.Sprint(ms[j-1].alerts); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// A new group with group_wait 0 goes out without anyone advancing a clock:
// Update wakes the scheduler.
func TestGroupWaitZeroSendsPromptly(t *testing.T) {
	s := strictSink(t)
	cfg := testConfig(Receiver{Name: "bureau", AlertmanagerWebhook: &AlertmanagerWebhook{URL: s.srv.URL}})
	cfg.GroupWait = 0
	h := openNotifier(t, "", cfg, nil, nil, true)
	h.update(t, alert(fp(1), "DOLow", "pond1", "red", 1, StatusFiring, time.Now()))
	reqs := s.waitFor(t, 1, 10*time.Second)
	m, err := decodeV4(reqs[0].body)
	if err != nil {
		t.Fatal(err)
	}
	if m.Receiver != "bureau" || len(m.Alerts) != 1 || m.GroupLabels["site"] != "pond1" || m.CommonLabels["severity"] != "red" {
		t.Fatalf("unexpected message %+v", m)
	}
	if got := reqs[0].header.Get(IdempotencyHeader); got != m.GroupKey+":1" {
		t.Fatalf("Idempotency-Key %q; want %q", got, m.GroupKey+":1")
	}
}
