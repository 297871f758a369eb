package broker

import (
	"strings"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// InternalUser is the identity of the cloud's own ingestor on the embedded
// broker. It is not a valid gateway id, and it authenticates only on the
// internal listener with the password generated at start.
const InternalUser = "$fieldwatch-cloud"

// ReservedID cannot be a gateway: fieldwatch/v1/alerts/ carries alerts.
const ReservedID = "alerts"

// policy is the topic ACL, keyed on the authenticated user name:
//
//   - a gateway U publishes only fieldwatch/v1/U/up, fieldwatch/v1/U/state
//     (its last will included) and fieldwatch/v1/U/reply (its answers to
//     remote commands), and reads only fieldwatch/v1/U/ack,
//     fieldwatch/v1/U/config (its desired configuration, retained) and
//     fieldwatch/v1/U/cmd (remote commands) and fieldwatch/v1/U/release
//     (its release manifest, retained), by those exact filters: no
//     wildcard, no shared subscription;
//   - only the ingestor publishes acks, configs, commands and releases;
//   - the ingestor (InternalUser) reads everything under fieldwatch/v1/,
//     and is the only user who may subscribe through $share/ (a shared
//     group is the ingestor's, so nobody else can join it and be handed,
//     or withhold, a share of the batches);
//   - an alert reader reads fieldwatch/v1/alerts/# and publishes nothing,
//     whatever its name: it is never also a gateway.
//
// Anything else is denied. The shipped Mosquitto ACL grants the same
// topics.
type policy struct {
	alertReaders map[string]bool
}

func newPolicy(alertReaders []string) *policy {
	p := &policy{alertReaders: map[string]bool{}}
	for _, u := range alertReaders {
		p.alertReaders[u] = true
	}
	return p
}

const alertsFilter = "fieldwatch/v1/" + ReservedID + "/#"

// allows reports whether user may publish to topic (write) or subscribe to
// filter / receive a message on topic (read).
func (p *policy) allows(user, topic string, write bool) bool {
	if shared(topic) {
		if write || user != InternalUser {
			return false
		}
		topic = unshare(topic)
	}
	switch {
	case user == InternalUser && write:
		return match("fieldwatch/v1/+/ack", topic) || match("fieldwatch/v1/+/config", topic) ||
			match("fieldwatch/v1/+/cmd", topic) || match("fieldwatch/v1/+/release", topic) || match(alertsFilter, topic)
	case user == InternalUser:
		return within(topic, "fieldwatch/v1/#")
	case p.alertReaders[user]:
		return !write && within(topic, alertsFilter)
	case user == ReservedID || telemetry.CheckName("gateway", user) != nil:
		return false
	case write:
		return topic == telemetry.UpTopic(user) || topic == telemetry.StateTopic(user) || topic == telemetry.ReplyTopic(user)
	}
	return topic == telemetry.AckTopic(user) || topic == telemetry.ConfigTopic(user) || topic == telemetry.CmdTopic(user) ||
		topic == telemetry.ReleaseTopic(user)
}

// shared reports whether filter is a shared subscription as Mochi reads
// one: a first level of $share in any case.
func shared(filter string) bool {
	first, _, _ := strings.Cut(filter, "/")
	return strings.EqualFold(first, "$share")
}

// unshare strips a shared subscription's $share/<group>/ prefix; a shared
// filter without a group and a filter is returned as it is (and matches
// nothing the policy grants).
func unshare(filter string) string {
	if _, rest, ok := strings.Cut(filter, "/"); ok {
		if _, f, ok := strings.Cut(rest, "/"); ok {
			return f
		}
	}
	return filter
}

// within reports whether every topic filter matches is also matched by
// pattern.
func within(filter, pattern string) bool {
	f, p := strings.Split(filter, "/"), strings.Split(pattern, "/")
	for i, pl := range p {
		if pl == "#" {
			return true
		}
		if i >= len(f) || f[i] == "#" {
			return false
		}
		if pl != "+" && f[i] != pl {
			return false // a wildcard, or another level
		}
	}
	return len(f) == len(p)
}

// match reports whether filter matches topic (which has no wildcards).
func match(filter, topic string) bool {
	return !strings.ContainsAny(topic, "+#") && within(topic, filter)
}
