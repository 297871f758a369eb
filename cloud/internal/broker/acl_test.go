package broker

import "testing"

func TestPolicy(t *testing.T) {
	p := newPolicy([]string{"display"})
	const r, w = false, true
	tests := []struct {
		user, topic string
		write, want bool
	}{
		{"farm-a", "fieldwatch/v1/farm-a/up", w, true},
		{"farm-a", "fieldwatch/v1/farm-a/state", w, true},
		{"farm-a", "fieldwatch/v1/farm-a/ack", r, true},
		// Shared subscriptions are the ingestor's alone: a gateway joins no
		// group, not even on its own acks.
		{"farm-a", "$share/g/fieldwatch/v1/farm-a/ack", r, false},
		{"farm-b", "$share/ingest/fieldwatch/v1/+/up", r, false},
		{"farm-b", "$share/ingest/fieldwatch/v1/farm-a/up", r, false},
		{"farm-b", "$share/ingest/fieldwatch/v1/farm-b/up", r, false},
		{"farm-b", "$share/x/#", r, false},
		{"farm-b", "$SHARE/ingest/fieldwatch/v1/farm-b/ack", r, false},
		{"farm-b", "$share/ingest/fieldwatch/v1/farm-b/up", w, false},
		{"farm-b", "$share", r, false},
		{"farm-a", "fieldwatch/v1/farm-a/+", r, false},
		{"farm-a", "fieldwatch/v1/farm-a/#", r, false},
		{"farm-a", "fieldwatch/v1/+/ack/#", r, false},
		{"farm-a", "fieldwatch/v1/farm-b/up", w, false},
		{"farm-a", "fieldwatch/v1/farm-b/state", w, false},
		{"farm-a", "fieldwatch/v1/farm-a/ack", w, false}, // acks come from the cloud
		{"farm-a", "fieldwatch/v1/farm-a/up", r, false},
		// The desired config: read only one's own, publish none.
		{"farm-a", "fieldwatch/v1/farm-a/config", r, true},
		{"farm-a", "fieldwatch/v1/farm-a/config", w, false},
		{"farm-a", "fieldwatch/v1/farm-b/config", r, false},
		{"farm-a", "fieldwatch/v1/farm-b/config", w, false},
		{"farm-a", "fieldwatch/v1/+/config", r, false},
		{"farm-a", "$share/g/fieldwatch/v1/farm-a/config", r, false},
		{InternalUser, "fieldwatch/v1/farm-a/config", w, true},
		{InternalUser, "fieldwatch/v1/+/config", w, false},
		{InternalUser, "fieldwatch/v1/farm-a/config/x", w, false},
		{"display", "fieldwatch/v1/display/config", r, false},
		{"display", "fieldwatch/v1/farm-a/config", w, false},
		// Remote commands: a gateway reads only its own and publishes
		// none; it answers only on its own reply topic, which only the
		// cloud reads.
		{"farm-a", "fieldwatch/v1/farm-a/cmd", r, true},
		{"farm-a", "fieldwatch/v1/farm-a/cmd", w, false},
		{"farm-a", "fieldwatch/v1/farm-b/cmd", r, false},
		{"farm-a", "fieldwatch/v1/farm-b/cmd", w, false},
		{"farm-a", "fieldwatch/v1/+/cmd", r, false},
		{"farm-a", "$share/g/fieldwatch/v1/farm-a/cmd", r, false},
		{"farm-a", "fieldwatch/v1/farm-a/release", r, true},
		{"farm-a", "fieldwatch/v1/farm-a/release", w, false},
		{"farm-a", "fieldwatch/v1/farm-b/release", r, false},
		{"farm-a", "fieldwatch/v1/+/release", r, false},
		{"farm-a", "fieldwatch/v1/farm-a/reply", w, true},
		{"farm-a", "fieldwatch/v1/farm-a/reply", r, false},
		{"farm-a", "fieldwatch/v1/farm-b/reply", w, false},
		{"farm-a", "fieldwatch/v1/farm-b/reply", r, false},
		{"farm-a", "fieldwatch/v1/+/reply", r, false},
		{InternalUser, "fieldwatch/v1/farm-a/cmd", w, true},
		{InternalUser, "fieldwatch/v1/+/cmd", w, false},
		{InternalUser, "fieldwatch/v1/farm-a/release", w, true},
		{InternalUser, "fieldwatch/v1/+/release", w, false},
		{InternalUser, "fieldwatch/v1/+/reply", r, true},
		{InternalUser, "fieldwatch/v1/farm-a/reply", w, false},
		{"display", "fieldwatch/v1/display/cmd", r, false},
		{"display", "fieldwatch/v1/farm-a/reply", r, false},
		{"farm-a", "fieldwatch/v1/farm-b/ack", r, false},
		{"farm-a", "fieldwatch/v1/+/ack", r, false},
		{"farm-a", "fieldwatch/v1/#", r, false},
		{"farm-a", "#", r, false},
		{"farm-a", "fieldwatch/v1/alerts/red/x/y", r, false},
		{"farm-a", "fieldwatch/v1/alerts/red/x/y", w, false},
		{"", "fieldwatch/v1//up", w, false},
		{"a/b", "fieldwatch/v1/a/b/up", w, false}, // not a gateway id
		{"+", "fieldwatch/v1/+/up", w, false},
		{"alerts", "fieldwatch/v1/alerts/up", w, false}, // reserved
		{InternalUser, "$share/ingest/fieldwatch/v1/+/up", r, true},
		{InternalUser, "$SHARE/ingest/fieldwatch/v1/+/state", r, true},
		{InternalUser, "$share/ingest/#", r, false},
		{InternalUser, "$share/ingest", r, false},
		{InternalUser, "$share/ingest/fieldwatch/v1/farm-a/ack", w, false},
		{InternalUser, "fieldwatch/v1/+/state", r, true},
		{InternalUser, "fieldwatch/v1/#", r, true},
		{InternalUser, "fieldwatch/v1/farm-a/up", r, true},
		{InternalUser, "fieldwatch/v1/farm-a/ack", w, true},
		{InternalUser, "fieldwatch/v1/alerts/red/north/frost", w, true},
		{InternalUser, "fieldwatch/v1/farm-a/up", w, false},
		{InternalUser, "fieldwatch/v1/farm-a/state", w, false},
		{InternalUser, "#", r, false},
		{InternalUser, "$SYS/#", r, false},
		{"display", "fieldwatch/v1/alerts/#", r, true},
		{"display", "fieldwatch/v1/alerts/+/north/#", r, true},
		{"display", "fieldwatch/v1/alerts/red/north/frost", r, true},
		{"display", "fieldwatch/v1/alerts/red/north/frost", w, false},
		{"display", "fieldwatch/v1/#", r, false},
		{"display", "fieldwatch/v1/farm-a/ack", r, false},
		// An alert reader is never a gateway, though its name is a valid id.
		{"display", "fieldwatch/v1/display/up", w, false},
		{"display", "fieldwatch/v1/display/state", w, false},
		{"display", "fieldwatch/v1/display/ack", r, false},
		{"display", "$share/g/fieldwatch/v1/alerts/#", r, false},
		{"display", "fieldwatch/v1/alerts/red/north/frost", w, false},
	}
	for _, tc := range tests {
		if got := p.allows(tc.user, tc.topic, tc.write); got != tc.want {
			t.Errorf("allows(%q, %q, write=%v) = %v, want %v", tc.user, tc.topic, tc.write, got, tc.want)
		}
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		filter, pattern string
		want            bool
	}{
		{"a/b/c", "a/b/c", true},
		{"a/b/c", "a/+/c", true},
		{"a/+/c", "a/+/c", true},
		{"a/+/c", "a/b/c", false},
		{"a/b", "a/#", true},
		{"a", "a/#", true}, // "a/#" matches its parent level
		{"a/#", "a/#", true},
		{"a/b/#", "a/#", true},
		{"#", "a/#", false},
		{"a/#", "a/+", false},
		{"a/b/c", "a/+", false},
		{"a", "a/+", false},
		{"+/b", "a/b", false},
	}
	for _, tc := range tests {
		if got := within(tc.filter, tc.pattern); got != tc.want {
			t.Errorf("within(%q, %q) = %v, want %v", tc.filter, tc.pattern, got, tc.want)
		}
	}
}
