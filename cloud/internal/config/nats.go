package config

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/secretfile"
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

	// ClientTLS is built from TLS by load for tls:// URLs.
	ClientTLS *tls.Config `yaml:"-"`
}

// Enabled reports whether the intake runs on NATS.
func (n *NATS) Enabled() bool { return len(n.URLs) > 0 }

func defaultNATS() NATS {
	return NATS{Partitions: 16, Replicas: 3, AckWait: time.Minute, PinnedTTL: 15 * time.Second, MaxPending: 256}
}

func (n *NATS) validate(r *yamlconf.Report) {
	if !n.Enabled() {
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
	if n.Password != "" && n.PasswordFile != "" {
		r.Errorf("nats.password_file", "give password or password_file, not both")
	}
	if (n.Password != "" || n.PasswordFile != "") && n.Username == "" {
		r.Errorf("nats.username", "is required with a password")
	}
}

// load reads the password file and the TLS files.
func (n *NATS) load(r *yamlconf.Report, loose func(string, *secretfile.Loose)) {
	n.ClientTLS = nil
	if !n.Enabled() {
		return
	}
	if n.PasswordFile != "" {
		b, l, err := secretfile.Read(n.PasswordFile)
		switch {
		case err != nil:
			r.Errorf("nats.password_file", "%v", err)
		case strings.TrimSpace(string(b)) == "":
			r.Errorf("nats.password_file", "%s is empty", n.PasswordFile)
		default:
			n.Password = strings.TrimSpace(string(b))
			loose("nats.password_file", l)
		}
	}
	secure := false
	for _, u := range n.URLs {
		secure = secure || strings.HasPrefix(u, "tls://")
	}
	if !secure && n.TLS == (TLS{}) {
		return
	}
	n.ClientTLS = n.TLS.client(r, loose, "nats.tls")
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
