package mqttsrc

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// Config is one MQTT source: a broker, a topic filter and the mapping of
// the payloads published there.
type Config struct {
	// Brokers are tried in turn: tcp://host:1883, ssl://host:8883 (system
	// roots), ws://host/mqtt, wss://….
	Brokers  []string `yaml:"brokers"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	// ClientID identifies the session at the broker; empty picks a random
	// one at each Run (so no persistent session).
	ClientID string `yaml:"client_id"`
	// Topic is the filter subscribed to, e.g.
	// application/+/device/+/event/up for ChirpStack v4 uplinks.
	Topic string `yaml:"topic"`
	// QoS is the subscription's maximum QoS, 0 to 2. With 1 or 2 a message
	// is acknowledged only once the sink has taken its readings.
	QoS int `yaml:"qos"`
	// PersistentSession keeps the session (subscription and QoS 1/2
	// messages queued while away) at the broker across reconnections;
	// needs ClientID.
	PersistentSession bool `yaml:"persistent_session"`
	// KeepAlive is the MQTT keep-alive; default 30s.
	KeepAlive time.Duration `yaml:"keep_alive"`
	// ReconnectMax bounds the back-off between reconnection attempts;
	// default 10s.
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// Queue is how many received messages may wait for the sink; beyond it
	// the source stops reading from the broker. Default 16.
	Queue int `yaml:"queue"`
	// Mapping turns payloads into readings (usually a device profile's).
	Mapping Mapping `yaml:"mapping"`
}

// Defaults and limits of Config.
const (
	DefaultKeepAlive    = 30 * time.Second
	DefaultReconnectMax = 10 * time.Second
	DefaultQueue        = 16
	MaxQueue            = 4096
	maxTopicLen         = 65535
)

// Normalize fills defaults.
func (c *Config) Normalize() {
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	c.Mapping.Normalize()
}

// Check reports what is wrong with a normalized config, as field path →
// message pairs.
func (c *Config) Check() map[string]string {
	bad := map[string]string{}
	if len(c.Brokers) == 0 {
		bad["brokers"] = "needs at least one broker URL such as tcp://127.0.0.1:1883"
	}
	for i, b := range c.Brokers {
		u, err := url.Parse(b)
		switch {
		case err != nil:
			bad[yamlconf.Join("brokers", i)] = fmt.Sprintf("%q is not a URL", b)
		case !knownScheme(u.Scheme):
			bad[yamlconf.Join("brokers", i)] = fmt.Sprintf("%q: scheme is not tcp, ssl, tls, mqtt, mqtts, ws or wss", b)
		case u.Host == "":
			bad[yamlconf.Join("brokers", i)] = fmt.Sprintf("%q has no host", b)
		case u.User != nil:
			bad[yamlconf.Join("brokers", i)] = fmt.Sprintf("%q carries credentials; put them in username and password, where they stay out of logs and status", u.Redacted())
		}
	}
	if msg := checkFilter(c.Topic); msg != "" {
		bad["topic"] = msg
	}
	if c.QoS < 0 || c.QoS > 2 {
		bad["qos"] = fmt.Sprintf("%d is not 0, 1 or 2", c.QoS)
	}
	if c.PersistentSession && c.ClientID == "" {
		bad["persistent_session"] = "needs a client_id: the broker keeps the session by it"
	}
	if len(c.ClientID) > maxTopicLen || !utf8.ValidString(c.ClientID) {
		bad["client_id"] = "must be UTF-8 text of at most 65535 bytes"
	}
	if c.KeepAlive < time.Second {
		bad["keep_alive"] = "must be at least 1s"
	}
	if c.ReconnectMax < 100*time.Millisecond {
		bad["reconnect_max"] = "must be at least 100ms"
	}
	if c.Queue < 1 || c.Queue > MaxQueue {
		bad["queue"] = fmt.Sprintf("%d is outside 1..%d", c.Queue, MaxQueue)
	}
	for k, msg := range c.Mapping.Check() {
		bad[yamlconf.Join("mapping", k)] = msg
	}
	return bad
}

func knownScheme(s string) bool {
	switch s {
	case "tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss":
		return true
	}
	return false
}

// checkFilter returns what is wrong with an MQTT topic filter, or "".
func checkFilter(f string) string {
	if f == "" {
		return "is required, e.g. application/+/device/+/event/up"
	}
	if len(f) > maxTopicLen || !utf8.ValidString(f) || strings.ContainsRune(f, 0) {
		return "must be UTF-8 text without NUL of at most 65535 bytes"
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return fmt.Sprintf("%q: # must be the last level", f)
		case l != "#" && l != "+" && strings.ContainsAny(l, "#+"):
			return fmt.Sprintf("%q: + and # must fill a whole level", f)
		}
	}
	return ""
}
