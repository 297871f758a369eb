package telemetry

import (
	"fmt"
	"strings"
)

// Topic layout. Every gateway has its own subtree so a broker ACL can confine
// it (see docs/wire.md).
const (
	TopicRoot = "fieldwatch/v1"
	// SharedUpFilter is the ingestors' shared subscription: replicas in the
	// group "ingest" split the gateways' batches between them.
	SharedUpFilter = "$share/ingest/" + TopicRoot + "/+/up"
	// UpFilter matches every gateway's up topic (unshared).
	UpFilter = TopicRoot + "/+/up"
	// StateFilter matches every gateway's state topic.
	StateFilter = TopicRoot + "/+/state"
)

// UpTopic is where gateway gw publishes batches.
func UpTopic(gw string) string { return TopicRoot + "/" + gw + "/up" }

// AckTopic is where the cloud acknowledges gateway gw's batches.
func AckTopic(gw string) string { return TopicRoot + "/" + gw + "/ack" }

// StateTopic is where gateway gw announces its state, retained.
func StateTopic(gw string) string { return TopicRoot + "/" + gw + "/state" }

// ParseTopic splits a gateway topic into the gateway id and the kind ("up",
// "ack", "state", "config", "cmd", "reply" or "release").
func ParseTopic(topic string) (gateway, kind string, err error) {
	rest, ok := strings.CutPrefix(topic, TopicRoot+"/")
	if !ok {
		return "", "", fmt.Errorf("topic %q is not under %s/", topic, TopicRoot)
	}
	gateway, kind, ok = strings.Cut(rest, "/")
	if !ok || strings.Contains(kind, "/") {
		return "", "", fmt.Errorf("topic %q is not %s/<gateway>/<kind>", topic, TopicRoot)
	}
	switch kind {
	case "up", "ack", "state", "config", "cmd", "reply", "release":
	default:
		return "", "", fmt.Errorf("topic %q: unknown kind %q", topic, kind)
	}
	if err := CheckName("gateway", gateway); err != nil {
		return "", "", fmt.Errorf("topic %q: %w", topic, err)
	}
	return gateway, kind, nil
}
