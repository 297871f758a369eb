package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// v4Message is Alertmanager's webhook message, decoded strictly.
type v4Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	} `json:"alerts"`
}

type hook struct {
	mu   sync.Mutex
	msgs []v4Message
	at   []time.Time
	keys []string
	errs []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m v4Message
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&m)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err != nil:
		h.errs = append(h.errs, err.Error())
	case m.Version != "4" || m.GroupKey == "" || len(m.Alerts) == 0 || (m.Status != "firing" && m.Status != "resolved"):
		h.errs = append(h.errs, fmt.Sprintf("not a v4 message: %+v", m))
	case r.Header.Get("Idempotency-Key") == "":
		h.errs = append(h.errs, "no Idempotency-Key")
	}
	h.msgs, h.at, h.keys = append(h.msgs, m), append(h.at, time.Now()), append(h.keys, r.Header.Get("Idempotency-Key"))
}

// startHook serves a hook until the test ends and returns it and its URL.
func startHook(t *testing.T) (*hook, string) {
	h := &hook{}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv.URL
}

func (h *hook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.msgs)
}

// TestEarlyWarningJourney sends readings as a gateway would, through real
// Mosquitto, to the cloud binary: a warning reaches a strict v4 webhook
// receiver and a real Alertmanager, resolves in both, and a replayed batch
// notifies no one. It logs how long from publishing a reading to the
// webhook request (docs/benchmarks.md).
func TestEarlyWarningJourney(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	am := testenv.StartAlertmanager(t)
	h, hookURL := startHook(t)
	cloudHTTP, args := alertCloudArgs(t, mosq.URL, "", fmt.Sprintf(`
      - name: bureau
        alertmanager_webhook: {url: %s}
      - name: am
        alertmanager_api: {url: %s}`, hookURL, am.URL))
	start(t, "fieldwatch-cloud", args...)
	waitHealthy(t, cloudHTTP)

	gw := newPondGateway(t, mosq.URL)
	send := func(v float64) []byte { return gw.send(v, time.Now()) }
	c := gw.c
	acks := gw.acks
	waitMsgs := func(n int, what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for h.count() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if h.count() < n {
			m, _ := testenv.Scrape("http://" + cloudHTTP + "/metrics")
			var alerts []json.RawMessage
			testenv.GetJSON("http://"+cloudHTTP+"/api/v1/alerts?state=all", &alerts)
			t.Fatalf("no %s; alerts %s; metrics: alert readings %v, published %v, notify sent %v, refused %v, failed %v; receiver errors %v",
				what, alerts, m["fieldwatch_alert_readings_total"], m[`fieldwatch_alert_published_total{state="firing"}`],
				m[`fieldwatch_notify_sent_total{receiver="bureau"}`], m,
				m[`fieldwatch_notify_failed_attempts_total{receiver="bureau"}`], h.errs)
		}
	}

	const cycles = 20
	var lat []time.Duration
	var firing []byte
	for i := 0; i < cycles; i++ {
		n := h.count()
		sent := time.Now()
		data := send(3.1)
		waitMsgs(n+1, "firing notification")
		h.mu.Lock()
		lat = append(lat, h.at[n].Sub(sent))
		m := h.msgs[n]
		h.mu.Unlock()
		if m.Status != "firing" || m.Alerts[0].Labels["severity"] != "yellow" || m.Alerts[0].Labels["site"] != "pond-7" ||
			m.Alerts[0].Annotations["standard"] != "GB 11607-89" || m.Alerts[0].GeneratorURL == "" {
			t.Fatalf("firing message %+v", m)
		}
		if i == 0 {
			firing = data
			testenv.Eventually(t, "alert in Alertmanager", 30*time.Second, func() bool {
				var got []struct {
					Labels map[string]string `json:"labels"`
				}
				return testenv.GetJSON(am.URL+"/api/v2/alerts?active=true", &got) == nil && len(got) == 1 &&
					got[0].Labels["alertname"] == "PondDissolvedOxygenLow"
			})
		}
		send(6)
		waitMsgs(n+2, "resolved notification")
		h.mu.Lock()
		m = h.msgs[n+1]
		h.mu.Unlock()
		if m.Status != "resolved" {
			t.Fatalf("resolved message %+v", m)
		}
		for j := 0; j < 6; j++ {
			send(6) // calm readings between episodes, or the engine rightly calls it flapping
		}
	}
	testenv.Eventually(t, "alert resolved in Alertmanager", 30*time.Second, func() bool {
		var got []json.RawMessage
		return testenv.GetJSON(am.URL+"/api/v2/alerts?active=true", &got) == nil && len(got) == 0
	})

	// A replay of the first firing batch: acknowledged again, stored and
	// judged once, no notification.
	n := h.count()
	c.Publish(telemetry.UpTopic("gw1"), 1, false, firing).Wait()
	select {
	case <-acks:
	case <-time.After(30 * time.Second):
		t.Fatal("replay not acknowledged")
	}
	time.Sleep(2 * time.Second) // a notification, were one made, would go at once (group_wait 0)
	if got := h.count(); got != n {
		t.Fatalf("a replayed batch notified: %d messages, want %d", got, n)
	}
	m, err := testenv.Scrape("http://" + cloudHTTP + "/metrics")
	if err != nil || m["fieldwatch_ingest_duplicates_total"] != 1 {
		t.Fatalf("duplicates %v (%v)", m["fieldwatch_ingest_duplicates_total"], err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) > 0 {
		t.Fatalf("receiver refused: %v", h.errs)
	}
	seen := map[string]bool{}
	for _, k := range h.keys {
		if seen[k] {
			t.Fatalf("idempotency key %s used twice", k)
		}
		seen[k] = true
	}
	slices.Sort(lat)
	t.Logf("reading published → webhook request, %d samples: p50 %v, p99 %v, max %v", len(lat),
		lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
}

// alertCloudArgs writes a cloud configuration with one rule, dissolved
// oxygen below 4 mg/L (yellow) or 2 (red) held for ruleFor, and the given
// notify receivers (YAML list items), and returns the cloud's HTTP address
// and the arguments that run it, again on the same data after a restart.
func alertCloudArgs(t *testing.T, mosqURL, ruleFor, receivers string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	forLine := ""
	if ruleFor != "" {
		forLine = "\n    for: " + ruleFor
	}
	cfgPath := writeAlertConfig(t, dir, `rules:
  - id: pond_do_low
    kind: threshold
    standard: "GB 11607-89"
    input: {metric: dissolved_oxygen}
    labels: {alertname: PondDissolvedOxygenLow, bureau: fishery}`+forLine+`
    levels:
      - {severity: yellow, op: "<", set: 4, clear: 4.5}
      - {severity: red, op: "<", set: 2, clear: 2.5}
`, "", receivers)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	return addr, []string{"run", "-c", cfgPath, "-mqtt-url", mosqURL, "-http", addr, "-data", filepath.Join(dir, "data")}
}

// writeAlertConfig writes rules (a rule file's YAML) and a cloud config
// that judges them alone (no packs, device_silent off, more alerting
// settings as YAML lines), notifying the receivers (YAML list items) at
// once, in dir; it returns the config's path.
func writeAlertConfig(t *testing.T, dir, rules, settings, receivers string) string {
	t.Helper()
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "cloud.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`alerting:
  packs: []
  rules: %s
  device_silent: {disabled: true}%s
  notify:
    group_wait: 0s
    group_interval: 1s
    receivers:%s
`, rulesPath, settings, receivers)), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath
}

// pondGateway publishes one dissolved-oxygen reading per batch as gateway
// gw1 at site pond-7 would, and waits for each batch's acknowledgement.
type pondGateway struct {
	t    *testing.T
	c    mqtt.Client
	acks chan telemetry.Ack
	seq  uint64
}

func newPondGateway(t *testing.T, mosqURL string) *pondGateway {
	g := &pondGateway{t: t, c: testenv.MQTTClient(t, mosqURL, "gw1"), acks: make(chan telemetry.Ack, 100)}
	g.c.Subscribe(telemetry.AckTopic("gw1"), 1, func(_ mqtt.Client, m mqtt.Message) {
		if a, err := telemetry.DecodeAck(m.Payload()); err == nil {
			g.acks <- a
		}
	}).Wait()
	return g
}

// send publishes value v measured at, and returns the encoded batch.
func (g *pondGateway) send(v float64, at time.Time) []byte {
	g.t.Helper()
	g.seq++
	b := &telemetry.Batch{Gateway: "gw1", Site: "pond-7", Stream: "s1", FirstSeq: g.seq, Committed: g.seq - 1,
		Readings: []telemetry.Reading{{Device: "do-probe", Metric: "dissolved_oxygen", Unit: "mg/L", Value: v, Time: at}}}
	data, err := telemetry.Encode(b, telemetry.CodecRowsDeflate)
	if err != nil {
		g.t.Fatal(err)
	}
	g.c.Publish(telemetry.UpTopic("gw1"), 1, false, data).Wait()
	select {
	case <-g.acks:
	case <-time.After(30 * time.Second):
		g.t.Fatal("batch not acknowledged")
	}
	return data
}

// apiAlert is the part of GET /api/v1/alerts this test reads.
type apiAlert struct {
	Fingerprint string    `json:"fingerprint"`
	State       string    `json:"state"`
	ActiveAt    time.Time `json:"active_at"`
}

// TestCloudRestartKeepsPendingTimer kills the cloud binary (SIGKILL) while an
// alert is pending on a rule with `for: 6s`; started again on the same
// data it keeps the alert pending since the first low reading, and a low
// reading 6 s after that one fires it. A cloud that forgot the timer would
// start it again at that reading and stay pending.
func TestCloudRestartKeepsPendingTimer(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	h, hookURL := startHook(t)
	cloudHTTP, args := alertCloudArgs(t, mosq.URL, "6s", fmt.Sprintf(`
      - name: bureau
        alertmanager_webhook: {url: %s}`, hookURL))
	cloud := start(t, "fieldwatch-cloud", args...)
	waitHealthy(t, cloudHTTP)
	gw := newPondGateway(t, mosq.URL)

	alerts := func() []apiAlert {
		var got []apiAlert
		if err := testenv.GetJSON("http://"+cloudHTTP+"/api/v1/alerts?state=all", &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	t0 := time.Now().Truncate(time.Millisecond)
	gw.send(3.1, t0)
	before := alerts()
	if len(before) != 1 || before[0].State != "pending" || !before[0].ActiveAt.Equal(t0) {
		t.Fatalf("after the first low reading the cloud has %+v; want one alert pending since %v", before, t0)
	}

	cloud.Stop(t, syscall.SIGKILL)
	start(t, "fieldwatch-cloud", args...)
	waitHealthy(t, cloudHTTP)
	after := alerts()
	if len(after) != 1 || after[0] != before[0] {
		t.Fatalf("after the restart the cloud has %+v; want %+v", after, before[0])
	}
	// Low again, 6 s after the first low reading (event time; the reading
	// is not from the future, so wait for it).
	time.Sleep(time.Until(t0.Add(6*time.Second + 100*time.Millisecond)))
	gw.send(3.0, t0.Add(6*time.Second+100*time.Millisecond))
	if got := alerts(); len(got) != 1 || got[0].State != "firing" || !got[0].ActiveAt.Equal(t0) {
		t.Fatalf("a low reading 6 s after the first, across a restart: %+v; want firing, active since %v", got, t0)
	}
	testenv.Eventually(t, "firing notification", 30*time.Second, func() bool { return h.count() == 1 })
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.msgs[0]; m.Status != "firing" || len(h.errs) > 0 {
		t.Fatalf("receiver got %+v (errors %v)", m, h.errs)
	}
}
