package rollout

import (
	"context"
	"fmt"
	"strings"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// ReleaseKind rolls out signed gateway releases (docs/fleet.md, Binary
// updates): its items are release manifests, its versions their serials,
// published retained on each gateway's release topic; a gateway's verdict
// is the update part of its state message and the version it runs.
type ReleaseKind struct {
	Registry *registry.Registry
	// Send publishes a manifest for a gateway, retained (the API's release
	// publisher).
	Send func(ctx context.Context, gw string, manifest []byte) error
}

var _ Kind = ReleaseKind{}

// Check implements Kind: the manifest must be addressed to gw (or to
// every gateway, "*"); its serial is the version.
func (k ReleaseKind) Check(gw string, item []byte) (uint64, error) {
	rel, err := telemetry.DecodeRelease(item)
	if err != nil {
		return 0, err
	}
	if !rel.For(gw) {
		return 0, fmt.Errorf("the release is for %s, not %q", strings.Join(rel.Gateways, ", "), gw)
	}
	return rel.Serial, nil
}

// Publish implements Kind.
func (k ReleaseKind) Publish(gw string, item []byte) error {
	return k.Send(context.Background(), gw, item)
}

// Observe implements Kind.
func (k ReleaseKind) Observe(gw string, serial uint64, item []byte) (Outcome, string, uint64) {
	st, ok := k.Registry.Station(gw)
	if !ok || st.Update == nil {
		return Pending, "", 0
	}
	if item == nil {
		return Pending, "", st.Update.Serial
	}
	rel, err := telemetry.DecodeRelease(item)
	if err != nil { // Check took it at its upload
		return Bad, "the rollout's manifest cannot be read: " + err.Error(), st.Update.Serial
	}
	return observeRelease(st.Update, st.Version, rel.Version, serial)
}

// observeRelease judges the release of version ver and serial serial from
// a gateway's update state u and the version it runs.
func observeRelease(u *telemetry.UpdateState, running, ver string, serial uint64) (Outcome, string, uint64) {
	newest := max(u.Serial, u.ErrorSerial)
	if rb := u.Rollback; rb != nil {
		newest = max(newest, rb.Serial)
	}
	// errorIsOurs: the last error is about this manifest. A gateway
	// reports the serial it is about (error_serial); an older one only
	// names it in the text, "(serial N)".
	errorIsOurs := u.Error != "" && (u.ErrorSerial == serial ||
		u.ErrorSerial == 0 && strings.Contains(u.Error, fmt.Sprintf("(serial %d)", serial)))
	if u.Serial < serial {
		// Not taken. A refusal (unknown key, bad signature, no binary for
		// its target, not started through a link) leaves the serial
		// where it was.
		if errorIsOurs {
			return Bad, "refused: " + u.Error, newest
		}
		return Pending, "", newest
	}
	switch {
	case u.Pending == ver:
		return Pending, "", newest // downloading, waiting for its window, or on trial
	case u.Pending != "":
		return Bad, fmt.Sprintf("superseded: the gateway took a newer release (%s, serial %d)", u.Pending, u.Serial), newest
	case running == ver:
		return Healthy, "", newest
	case u.Rollback != nil && (u.Rollback.Serial == serial || u.Rollback.Serial == 0 && u.Rollback.From == ver):
		return Bad, "rolled back: " + u.Rollback.Reason, newest
	case errorIsOurs || u.ErrorSerial == 0 && u.Error != "":
		return Bad, "failed: " + u.Error, newest
	case u.Serial > serial:
		return Bad, fmt.Sprintf("superseded: the gateway took serial %d", u.Serial), newest
	}
	return Pending, "", newest
}
