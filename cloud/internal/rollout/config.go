package rollout

import (
	"fmt"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// ConfigKind rolls out signed configs (docs/fleet.md): its items are
// config envelopes, published retained on each gateway's config topic;
// a gateway's verdict is the config part of its state message.
type ConfigKind struct {
	Registry *registry.Registry
	// Send publishes an envelope for a gateway, retained (the API's
	// ConfigPublisher).
	Send func(gw string, envelope []byte) error
}

var _ Kind = ConfigKind{}

// Check implements Kind.
func (k ConfigKind) Check(gw string, item []byte) (uint64, error) {
	env, err := telemetry.DecodeConfig(item)
	if err != nil {
		return 0, err
	}
	if env.Gateway != gw {
		return 0, fmt.Errorf("the envelope is addressed to %q, not %q", env.Gateway, gw)
	}
	return env.Version, nil
}

// Publish implements Kind.
func (k ConfigKind) Publish(gw string, item []byte) error { return k.Send(gw, item) }

// Observe implements Kind.
func (k ConfigKind) Observe(gw string, v uint64, _ []byte) (Outcome, string, uint64) {
	st, ok := k.Registry.Station(gw)
	if !ok || st.Config == nil {
		return Pending, "", 0
	}
	return observeConfig(st.Config, v)
}

// observeConfig judges version v from a gateway's config state.
func observeConfig(c *telemetry.ConfigState, v uint64) (Outcome, string, uint64) {
	newest := max(c.Version, c.ErrorVersion, c.Checking)
	if rb := c.Rollback; rb != nil {
		newest = max(newest, rb.From)
		if rb.From == v {
			return Bad, "rolled back: " + rb.Reason, newest
		}
	}
	switch {
	case c.ErrorVersion == v && c.Error != "" && c.Checking != v:
		return Bad, "refused: " + c.Error, newest
	case c.Checking == v:
		return Pending, "", newest
	case c.Version == v:
		return Healthy, "", newest
	case c.Version > v:
		return Bad, fmt.Sprintf("runs version %d, newer than this rollout's", c.Version), newest
	}
	return Pending, "", newest
}
