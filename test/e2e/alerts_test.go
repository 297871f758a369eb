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
	h := &hook{}
	recv := httptest.NewServer(h)
	defer recv.Close()
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rulesPath, []byte(`rules:
  - id: pond_do_low
    kind: threshold
    standard: "GB 11607-89"
    input: {metric: dissolved_oxygen}
    labels: {alertname: PondDissolvedOxygenLow, bureau: fishery}
    levels:
      - {severity: yellow, op: "<", set: 4, clear: 4.5}
      - {severity: red, op: "<", set: 2, clear: 2.5}
`), 0o644)
	cfgPath := filepath.Join(dir, "cloud.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`alerting:
  packs: []
  rules: %s
  device_silent: {disabled: true}
  notify:
    group_wait: 0s
    group_interval: 1s
    receivers:
      - name: bureau
        alertmanager_webhook: {url: %s}
      - name: am
        alertmanager_api: {url: %s}
`, rulesPath, recv.URL, am.URL)), 0o644)
	cloudHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	start(t, "fieldwatch-cloud", "run", "-c", cfgPath, "-mqtt-url", mosq.URL, "-http", cloudHTTP, "-data", filepath.Join(dir, "data"))
	waitHealthy(t, cloudHTTP)

	c := testenv.MQTTClient(t, mosq.URL, "gw1")
	acks := make(chan telemetry.Ack, 100)
	c.Subscribe(telemetry.AckTopic("gw1"), 1, func(_ mqtt.Client, m mqtt.Message) {
		if a, err := telemetry.DecodeAck(m.Payload()); err == nil {
			acks <- a
		}
	}).Wait()
	seq := uint64(0)
	send := func(v float64) []byte {
		seq++
		b := &telemetry.Batch{Gateway: "gw1", Site: "pond-7", Stream: "s1", FirstSeq: seq, Committed: seq - 1,
			Readings: []telemetry.Reading{{Device: "do-probe", Metric: "dissolved_oxygen", Unit: "mg/L", Value: v, Time: time.Now()}}}
		data, err := telemetry.Encode(b, telemetry.CodecRowsDeflate)
		if err != nil {
			t.Fatal(err)
		}
		c.Publish(telemetry.UpTopic("gw1"), 1, false, data).Wait()
		select {
		case <-acks:
		case <-time.After(30 * time.Second):
			t.Fatal("batch not acknowledged")
		}
		return data
	}
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
