package config

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/secretfile"
	"github.com/fieldwatch/fieldwatch/internal/tlsfiles"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// NATS runs the intake on a NATS JetStream cluster instead of an MQTT
// broker: several cloud replicas share the gateways, partition by
// partition (docs/scaling.md). Off while URLs is empty.
type NATS struct {
	// URLs are the cluster's nodes (nats://host:4222, tls://host:4222).
	URLs []string `yaml:"urls"`
	// Username and Password (or PasswordFile, one line) log in.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	TLS          TLS    `yaml:"tls"`
	// Stream names the stream of the gateways' batches; Partitions is how
	// many partitions it has (every replica must say the same, and it is
	// fixed once the stream exists); Replicas its replication (3 on a
	// cluster of three nodes, 1 on one node).
	Stream     string `yaml:"stream"`
	Partitions int    `yaml:"partitions"`
	Replicas   int    `yaml:"replicas"`
	// AckWait: a batch a replica has not finished by then goes to another.
	// PinnedTTL: a replica that stops asking for this long loses its
	// partitions (and its heartbeat key expires). MaxPending bounds each
	// partition's batches out at once.
	AckWait    time.Duration `yaml:"ack_wait"`
	PinnedTTL  time.Duration `yaml:"pinned_ttl"`
	MaxPending int           `yaml:"max_pending"`
	// MQTT is the cluster's MQTT listeners as the cloud reaches them, for
	// what only NATS's MQTT side keeps: retained messages (desired configs
	// and release manifests, docs/decisions.md §47). Without it the
	// replicas answer 501 to config pushes and releases.
	MQTT NATSMQTT `yaml:"mqtt"`

	// ClientTLS is built from TLS by load for tls:// URLs.
	ClientTLS *tls.Config `yaml:"-"`
	// passwordRead is the password last read from PasswordFile (Check
	// validates again after load).
	passwordRead string
}

// NATSMQTT is how a replica publishes retained messages: as an MQTT client
// of the cluster's MQTT listeners, under a user the nodes' permissions let
// publish on every gateway's config and release subjects (docs/scaling.md).
type NATSMQTT struct {
	// URLs are the listeners (tcp://n1:1883, ssl://n1:8883); the client
	// fails over between them.
	URLs []string `yaml:"urls"`
	// Username and Password (or PasswordFile) log in; without a username,
	// nats.username and its password.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	TLS          TLS    `yaml:"tls"`

	// ClientTLS is built from TLS by load for TLS URLs.
	ClientTLS    *tls.Config `yaml:"-"`
	passwordRead string
}

// Enabled reports whether the replicas publish retained messages.
func (m *NATSMQTT) Enabled() bool { return len(m.URLs) > 0 }

// Enabled reports whether the intake runs on NATS.
func (n *NATS) Enabled() bool { return len(n.URLs) > 0 }

func defaultNATS() NATS {
	return NATS{Partitions: 16, Replicas: 3, AckWait: time.Minute, PinnedTTL: 15 * time.Second, MaxPending: 256}
}

func (n *NATS) validate(r *yamlconf.Report) {
	if !n.Enabled() {
		if n.MQTT.Enabled() {
			r.Errorf("nats.mqtt.urls", "needs nats.urls: the MQTT listeners are the NATS cluster's")
		}
		return
	}
	for i, u := range n.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "nats" && p.Scheme != "tls") || p.Host == "" {
			r.Errorf(yamlconf.Join("nats.urls", i, ""), "%q is not a nats:// or tls:// URL", u)
		}
	}
	if n.Partitions < 1 || n.Partitions > 1024 {
		r.Errorf("nats.partitions", "%d is outside 1..1024", n.Partitions)
	}
	if n.Replicas != 1 && n.Replicas != 3 && n.Replicas != 5 {
		r.Errorf("nats.replicas", "%d: JetStream replicates to 1, 3 or 5 nodes", n.Replicas)
	}
	if n.AckWait < time.Second {
		r.Errorf("nats.ack_wait", "%v is under 1s", n.AckWait)
	}
	if n.PinnedTTL < time.Second {
		r.Errorf("nats.pinned_ttl", "%v is under 1s", n.PinnedTTL)
	}
	if n.MaxPending < 1 {
		r.Errorf("nats.max_pending", "%d is under 1", n.MaxPending)
	}
	if n.Password != "" && n.PasswordFile != "" && n.Password != n.passwordRead {
		r.Errorf("nats.password_file", "give password or password_file, not both")
	}
	if (n.Password != "" || n.PasswordFile != "") && n.Username == "" {
		r.Errorf("nats.username", "is required with a password")
	}
	n.MQTT.validate(r)
}

func (m *NATSMQTT) validate(r *yamlconf.Report) {
	if !m.Enabled() {
		if m.Username != "" || m.Password != "" || m.PasswordFile != "" || m.TLS != (TLS{}) {
			r.Errorf("nats.mqtt.urls", "is required with nats.mqtt's other fields")
		}
		return
	}
	secure := 0
	for i, u := range m.URLs {
		field := yamlconf.Join("nats.mqtt.urls", i, "")
		p, err := url.Parse(u)
		switch {
		case err != nil || p.Host == "" || p.Port() == "":
			r.Errorf(field, "%q is not an MQTT listener URL such as tcp://n1:1883", u)
			continue
		case p.User != nil:
			r.Errorf(field, "%q carries credentials; put them in nats.mqtt.username and password_file", p.Redacted())
		}
		switch p.Scheme {
		case "ssl", "tls", "mqtts":
			secure++
		case "tcp", "mqtt":
		default:
			r.Errorf(field, "%q: scheme must be tcp, mqtt, ssl, tls or mqtts", u)
		}
	}
	if m.TLS != (TLS{}) && secure == 0 {
		r.Errorf("nats.mqtt.tls", "needs TLS listener URLs (ssl://, tls://, mqtts://)")
	}
	if (m.TLS.CertFile == "") != (m.TLS.KeyFile == "") {
		r.Errorf("nats.mqtt.tls.key_file", "cert_file and key_file go together")
	}
	if m.Password != "" && m.PasswordFile != "" && m.Password != m.passwordRead {
		r.Errorf("nats.mqtt.password_file", "give password or password_file, not both")
	}
	if (m.Password != "" || m.PasswordFile != "") && m.Username == "" {
		r.Errorf("nats.mqtt.username", "is required with a password (without both, nats.username's are used)")
	}
}

// load reads the password file and the TLS files.
func (n *NATS) load(r *yamlconf.Report, loose func(string, *secretfile.Loose)) {
	n.ClientTLS = nil
	if !n.Enabled() {
		return
	}
	if pw, ok := readSecret(r, loose, "nats.password_file", n.PasswordFile); ok {
		n.Password, n.passwordRead = pw, pw
	}
	defer n.MQTT.load(r, loose, n)
	secure := false
	for _, u := range n.URLs {
		secure = secure || strings.HasPrefix(u, "tls://")
	}
	if !secure && n.TLS == (TLS{}) {
		return
	}
	n.ClientTLS = n.TLS.client(r, loose, "nats.tls")
}

// load reads the MQTT side's password file and TLS files; without a
// username of its own it logs in as nats.username (n's password is read
// first).
func (m *NATSMQTT) load(r *yamlconf.Report, loose func(string, *secretfile.Loose), n *NATS) {
	m.ClientTLS = nil
	if !m.Enabled() {
		return
	}
	if pw, ok := readSecret(r, loose, "nats.mqtt.password_file", m.PasswordFile); ok {
		m.Password, m.passwordRead = pw, pw
	}
	if m.Username == "" {
		m.Username, m.Password = n.Username, n.Password
	}
	secure := false
	for _, u := range m.URLs {
		secure = secure || tlsfiles.SecureURL(u)
	}
	if secure || m.TLS != (TLS{}) {
		m.ClientTLS = m.TLS.client(r, loose, "nats.mqtt.tls")
	}
}

// String names the cluster for logs.
func (n *NATS) String() string { return fmt.Sprintf("%v (stream %s)", n.URLs, n.Stream) }

// needsMQTT reports whether a notification receiver publishes over MQTT.
func needsMQTT(a Alerting) bool {
	if a.Disabled {
		return false
	}
	for _, r := range a.Notify.Receivers {
		if r.MQTT != nil {
			return true
		}
	}
	return false
}

// readSecret reads a one-line secret from path, the file of field ("": no
// file, not ok), reporting an unreadable or empty file and noting a loose
// one.
func readSecret(r *yamlconf.Report, loose func(string, *secretfile.Loose), field, path string) (string, bool) {
	if path == "" {
		return "", false
	}
	b, l, err := secretfile.Read(path)
	switch {
	case err != nil:
		r.Errorf(field, "%v", err)
	case strings.TrimSpace(string(b)) == "":
		r.Errorf(field, "%s is empty", path)
	default:
		loose(field, l)
		return strings.TrimSpace(string(b)), true
	}
	return "", false
}
