package notify

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

func decodeConfig(data string) (Config, error) {
	c := DefaultConfig()
	err := yamlconf.Decode("notify.yaml", []byte(data), &c)
	return c, err
}

func TestConfigGood(t *testing.T) {
	c, err := decodeConfig(`
group_by: [alertname, site]
group_wait: 10s
repeat_interval: {red: 30m}
retry: {initial: 2s, max: 1m}
receivers:
  - name: bureau
    alertmanager_webhook: {url: "http://bureau.example/hook", max_alerts: 5, send_resolved: false}
  - name: am
    alertmanager_api: {url: "http://127.0.0.1:9093"}
  - name: ops
    webhook: {url: "https://ops.example/hook", secret_file: /etc/fieldwatch/hook.secret}
  - name: mqtt
    mqtt: {}
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.GroupWait.String() != "10s" || c.GroupInterval.String() != "5m0s" || c.RepeatInterval.Blue.String() != "12h0m0s" ||
		len(c.Receivers) != 4 || c.Receivers[0].sendResolved() || !c.Receivers[1].sendResolved() ||
		c.Receivers[3].Kind() != KindMQTT {
		t.Fatalf("decoded %+v", c)
	}
}

func TestConfigBad(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"no kind", "receivers: [{name: x}]", "receivers[0]: needs exactly one of"},
		{"two kinds", "receivers: [{name: x, mqtt: {}, webhook: {url: 'http://a/', secret_file: f}}]", "receivers[0]: needs exactly one"},
		{"bad url", "receivers: [{name: a}, {name: b, webhook: {url: 'ftp://x', secret_file: f}}]", "receivers[1].webhook.url:"},
		{"no secret", "receivers: [{name: b, webhook: {url: 'http://x/'}}]", "receivers[0].webhook.secret_file: is required"},
		{"am api url", "receivers: [{name: b, alertmanager_api: {url: 'localhost:9093'}}]", "receivers[0].alertmanager_api.url:"},
		{"negative max_alerts", "receivers: [{name: b, alertmanager_webhook: {url: 'http://x/', max_alerts: -1}}]", "receivers[0].alertmanager_webhook.max_alerts:"},
		{"duplicate name", "receivers: [{name: b, mqtt: {}}, {name: b, mqtt: {}}]", "receivers[1].name:"},
		{"bad name", "receivers: [{name: 'a b', mqtt: {}}]", "receivers[0].name:"},
		{"bad prefix", "receivers: [{name: m, mqtt: {topic_prefix: 'a/#'}}]", "receivers[0].mqtt.topic_prefix:"},
		{"unknown field", "receivers: [{name: m, mqtt: {}, sned_resolved: true}]", "receivers[0].sned_resolved: unknown field"},
		{"group_by ...", "group_by: ['...', site]", "group_by[0]:"},
		{"group_by label", "group_by: ['a-b']", "group_by[0]:"},
		{"group_interval", "group_interval: 0s", "group_interval: must be positive"},
		{"repeat below interval", "repeat_interval: {red: 1m}", "repeat_interval.red:"},
		{"retry", "retry: {initial: 5s, max: 1s}", "retry.max:"},
		{"duration unit", "group_wait: 30", "group_wait:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeConfig(tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one containing %q", err, tc.want)
			}
			var es yamlconf.Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T is not yamlconf.Errors", err)
			}
		})
	}
}

func TestValidateAtPrefixesPaths(t *testing.T) {
	c := DefaultConfig()
	c.Receivers = []Receiver{{Name: "x", Webhook: &Webhook{URL: "nope"}}}
	var r yamlconf.Report
	c.ValidateAt(&r, "alerting.notify")
	err := r.Err("cloud.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "alerting.notify.receivers[0].webhook.url") {
		t.Fatalf("error %v", err)
	}
}

// Open reads secret files: a missing or empty one is a config error naming
// the field; an MQTT receiver needs a Publisher.
func TestOpenChecksFiles(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rc   Receiver
		want string
	}{
		{"missing secret", Receiver{Name: "w", Webhook: &Webhook{URL: "http://x/", SecretFile: filepath.Join(dir, "nope")}}, "receivers[0].webhook.secret_file"},
		{"empty secret", Receiver{Name: "w", Webhook: &Webhook{URL: "http://x/", SecretFile: empty}}, "file is empty"},
		{"no publisher", Receiver{Name: "m", MQTT: &MQTTReceiver{}}, "needs a Publisher"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(context.Background(), Options{Path: filepath.Join(dir, tc.name+".db"), Config: testConfig(tc.rc)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// Update refuses invalid and stale alert states and counts them.
func TestUpdateRefusesBadAlerts(t *testing.T) {
	h := openNotifier(t, "", testConfig(), nil, nil, false)
	good := alert(fp(1), "X", "s", "red", 5, StatusFiring, newClock().Now())
	bad := func(f func(*Alert)) Alert { a := cloneAlert(good); f(&a); return a }
	h.update(t, good,
		bad(func(a *Alert) { a.Fingerprint = "XYZ" }),
		bad(func(a *Alert) { a.Status = "pending" }),
		bad(func(a *Alert) { a.Labels["severity"] = "purple" }),
		bad(func(a *Alert) { a.Labels["level"] = "12" }),
		bad(func(a *Alert) { a.Seq = 4 }))
	if got := testutilValue(t, h, "fieldwatch_notify_refused_total", "invalid"); got != 4 {
		t.Errorf("refused invalid = %v; want 4", got)
	}
	if got := testutilValue(t, h, "fieldwatch_notify_refused_total", "stale"); got != 1 {
		t.Errorf("refused stale = %v; want 1", got)
	}
}

func FuzzConfig(f *testing.F) {
	f.Add([]byte("group_by: [alertname]\nreceivers: [{name: a, mqtt: {}}]\n"))
	f.Add([]byte("receivers:\n  - name: b\n    alertmanager_webhook: {url: http://x/, max_alerts: 3}\n"))
	f.Add([]byte("repeat_interval: {red: 1h}\nretry: {initial: 1s, max: 2s}\n"))
	f.Add([]byte("group_by: ['...']\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := DefaultConfig()
		if err := yamlconf.Decode("fuzz.yaml", data, &c); err == nil {
			var r yamlconf.Report
			c.ValidateAt(&r, "x")
			for _, rc := range c.Receivers {
				_ = rc.Kind()
				_ = rc.sendResolved()
			}
		}
	})
}
