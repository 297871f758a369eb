package notify

import (
	"net/url"
	"regexp"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// Config is the notifier's configuration (the cloud config's
// alerting.notify). Decode YAML over DefaultConfig, then validate.
type Config struct {
	// GroupBy are the labels grouping alerts into one notification for
	// the grouped receivers (alertmanager_webhook, webhook). ["..."] puts
	// every alert in its own group; an empty list puts all in one group.
	GroupBy []string `yaml:"group_by"`
	// GroupWait is how long a new group waits before its first message,
	// so siblings and inhibiting alerts arrive first.
	GroupWait time.Duration `yaml:"group_wait"`
	// GroupInterval is the least time between two messages of a group.
	GroupInterval time.Duration `yaml:"group_interval"`
	// RepeatInterval re-sends an unchanged group that still has firing,
	// unacknowledged, unmuted alerts, by its highest firing severity.
	RepeatInterval RepeatInterval `yaml:"repeat_interval"`
	// Retry is the backoff of a receiver whose head message failed.
	Retry Retry `yaml:"retry"`
	// ExternalURL is the v4 message's externalURL (our dashboard).
	ExternalURL string `yaml:"external_url"`
	// Receivers are where notifications go; each has exactly one kind.
	Receivers []Receiver `yaml:"receivers"`
}

// RepeatInterval is a repeat interval per severity colour.
type RepeatInterval struct {
	Red    time.Duration `yaml:"red"`
	Orange time.Duration `yaml:"orange"`
	Yellow time.Duration `yaml:"yellow"`
	Blue   time.Duration `yaml:"blue"`
}

// For returns the interval of severity (Blue's for an unknown one).
func (ri RepeatInterval) For(severity string) time.Duration {
	switch severity {
	case "red":
		return ri.Red
	case "orange":
		return ri.Orange
	case "yellow":
		return ri.Yellow
	}
	return ri.Blue
}

// Retry is exponential backoff with jitter: Initial, doubling up to Max.
type Retry struct {
	Initial time.Duration `yaml:"initial"`
	Max     time.Duration `yaml:"max"`
}

// Receiver is one destination. Exactly one of its kinds is set.
type Receiver struct {
	Name                string               `yaml:"name"`
	AlertmanagerWebhook *AlertmanagerWebhook `yaml:"alertmanager_webhook"`
	AlertmanagerAPI     *AlertmanagerAPI     `yaml:"alertmanager_api"`
	Webhook             *Webhook             `yaml:"webhook"`
	MQTT                *MQTTReceiver        `yaml:"mqtt"`
}

// AlertmanagerWebhook posts grouped Alertmanager webhook v4 messages.
type AlertmanagerWebhook struct {
	URL string `yaml:"url"`
	// MaxAlerts caps the alerts in one message (0: no cap); the rest are
	// counted in truncatedAlerts.
	MaxAlerts int `yaml:"max_alerts"`
	// SendResolved (default true) sends resolved groups and alerts.
	SendResolved *bool `yaml:"send_resolved"`
	// Timeout of one request (default 10s).
	Timeout time.Duration `yaml:"timeout"`
}

// AlertmanagerAPI pushes alerts to an Alertmanager's POST /api/v2/alerts.
type AlertmanagerAPI struct {
	// URL is the Alertmanager's base URL (http://127.0.0.1:9093).
	URL string `yaml:"url"`
	// Resend re-sends active alerts so Alertmanager does not resolve them
	// by timeout (default 1m; keep it below its resolve_timeout).
	Resend  time.Duration `yaml:"resend"`
	Timeout time.Duration `yaml:"timeout"`
}

// Webhook posts one signed JSON object per alert state change, on the
// grouping schedule.
type Webhook struct {
	URL string `yaml:"url"`
	// SecretFile holds the HMAC-SHA256 key (surrounding white space is
	// ignored). It is read at Open.
	SecretFile string        `yaml:"secret_file"`
	Timeout    time.Duration `yaml:"timeout"`
}

// MQTTReceiver publishes per alert state change through Options.Publisher.
type MQTTReceiver struct {
	// TopicPrefix (default fieldwatch/v1/alerts).
	TopicPrefix string `yaml:"topic_prefix"`
}

// Receiver kinds, as Kind returns them.
const (
	KindAlertmanagerWebhook = "alertmanager_webhook"
	KindAlertmanagerAPI     = "alertmanager_api"
	KindWebhook             = "webhook"
	KindMQTT                = "mqtt"
)

// Kind names the receiver's kind, "" when none or several are set.
func (r Receiver) Kind() string {
	var kinds []string
	if r.AlertmanagerWebhook != nil {
		kinds = append(kinds, KindAlertmanagerWebhook)
	}
	if r.AlertmanagerAPI != nil {
		kinds = append(kinds, KindAlertmanagerAPI)
	}
	if r.Webhook != nil {
		kinds = append(kinds, KindWebhook)
	}
	if r.MQTT != nil {
		kinds = append(kinds, KindMQTT)
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// grouped reports whether the receiver's messages follow the group timers.
func (r Receiver) grouped() bool {
	k := r.Kind()
	return k == KindAlertmanagerWebhook || k == KindWebhook
}

// sendResolved reports whether resolved alerts are sent.
func (r Receiver) sendResolved() bool {
	if w := r.AlertmanagerWebhook; w != nil && w.SendResolved != nil {
		return *w.SendResolved
	}
	return true
}

// DefaultConfig returns the defaults: Alertmanager's timers and the
// per-colour repeat intervals of the early-warning design, no receivers.
func DefaultConfig() Config {
	return Config{
		GroupBy:        []string{"alertname", "site", "severity"},
		GroupWait:      30 * time.Second,
		GroupInterval:  5 * time.Minute,
		RepeatInterval: RepeatInterval{Red: 30 * time.Minute, Orange: time.Hour, Yellow: 4 * time.Hour, Blue: 12 * time.Hour},
		Retry:          Retry{Initial: time.Second, Max: time.Minute},
	}
}

var (
	receiverNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	labelNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Validate implements yamlconf.Validator.
func (c *Config) Validate(r *yamlconf.Report) { c.ValidateAt(r, "") }

// ValidateAt reports problems with field paths under prefix (for example
// "alerting.notify"), for a Config embedded in a larger one. It does no I/O:
// secret files are read by Open.
func (c *Config) ValidateAt(r *yamlconf.Report, prefix string) {
	p := func(parts ...any) string { return yamlconf.Join(append([]any{prefix}, parts...)...) }
	seen := map[string]bool{}
	for i, l := range c.GroupBy {
		switch {
		case l == "...":
			if len(c.GroupBy) != 1 {
				r.Errorf(p("group_by", i), `"..." must be the only entry`)
			}
		case !labelNameRE.MatchString(l):
			r.Errorf(p("group_by", i), "%q is not a label name", l)
		case seen[l]:
			r.Errorf(p("group_by", i), "%q is listed twice", l)
		}
		seen[l] = true
	}
	if c.GroupWait < 0 {
		r.Errorf(p("group_wait"), "must not be negative")
	}
	if c.GroupInterval <= 0 {
		r.Errorf(p("group_interval"), "must be positive")
	}
	for _, sev := range severities {
		if d := c.RepeatInterval.For(sev); d <= 0 {
			r.Errorf(p("repeat_interval", sev), "must be positive")
		} else if d < c.GroupInterval {
			r.Errorf(p("repeat_interval", sev), "%v is shorter than group_interval %v; repeats happen at most every group_interval", d, c.GroupInterval)
		}
	}
	if c.Retry.Initial <= 0 {
		r.Errorf(p("retry.initial"), "must be positive")
	}
	if c.Retry.Max < c.Retry.Initial {
		r.Errorf(p("retry.max"), "%v is less than retry.initial %v", c.Retry.Max, c.Retry.Initial)
	}
	if c.ExternalURL != "" {
		checkURL(r, p("external_url"), c.ExternalURL)
	}
	names := map[string]bool{}
	for i, rc := range c.Receivers {
		rp := func(parts ...any) string { return p(append([]any{"receivers", i}, parts...)...) }
		switch {
		case !receiverNameRE.MatchString(rc.Name):
			r.Errorf(rp("name"), "%q is not a receiver name (letters, digits, _ . -; at most 64)", rc.Name)
		case names[rc.Name]:
			r.Errorf(rp("name"), "%q is used by another receiver", rc.Name)
		}
		names[rc.Name] = true
		if rc.Kind() == "" {
			r.Errorf(rp(), "needs exactly one of alertmanager_webhook, alertmanager_api, webhook, mqtt")
			continue
		}
		switch {
		case rc.AlertmanagerWebhook != nil:
			w := rc.AlertmanagerWebhook
			checkURL(r, rp("alertmanager_webhook", "url"), w.URL)
			if w.MaxAlerts < 0 {
				r.Errorf(rp("alertmanager_webhook", "max_alerts"), "must not be negative")
			}
			checkTimeout(r, rp("alertmanager_webhook", "timeout"), w.Timeout)
		case rc.AlertmanagerAPI != nil:
			a := rc.AlertmanagerAPI
			checkURL(r, rp("alertmanager_api", "url"), a.URL)
			if a.Resend < 0 {
				r.Errorf(rp("alertmanager_api", "resend"), "must not be negative (0: the default 1m)")
			}
			checkTimeout(r, rp("alertmanager_api", "timeout"), a.Timeout)
		case rc.Webhook != nil:
			w := rc.Webhook
			checkURL(r, rp("webhook", "url"), w.URL)
			if w.SecretFile == "" {
				r.Errorf(rp("webhook", "secret_file"), "is required: webhook messages are signed")
			}
			checkTimeout(r, rp("webhook", "timeout"), w.Timeout)
		case rc.MQTT != nil:
			if t := rc.MQTT.TopicPrefix; t != "" && !validPrefix(t) {
				r.Errorf(rp("mqtt", "topic_prefix"), "%q is not an MQTT topic prefix (no +, #, empty levels or trailing /)", t)
			}
		}
	}
}

func checkURL(r *yamlconf.Report, path, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.Errorf(path, "%q is not an http(s) URL", s)
	}
}

func checkTimeout(r *yamlconf.Report, path string, d time.Duration) {
	if d < 0 {
		r.Errorf(path, "must not be negative (0: the default %v)", defaultTimeout)
	}
}

const (
	defaultTimeout = 10 * time.Second
	defaultResend  = time.Minute
	defaultPrefix  = "fieldwatch/v1/alerts"
)

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// severities in rising order.
var severities = [...]string{"blue", "yellow", "orange", "red"}

func severityRank(s string) int {
	for i, v := range severities {
		if v == s {
			return i
		}
	}
	return -1
}
