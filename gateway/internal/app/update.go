package app

import (
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/gateway/internal/update"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// onRelease is the uplink's handler for release manifests, nil when the
// config does not take binary updates or this process is a binary on
// trial (it takes none); it also points the updater at cfg's trust.
func (a *App) onRelease(cfg *config.Config) func([]byte) {
	if !cfg.UpdatesEnabled() {
		return nil
	}
	a.update.SetTrust(update.Trust{Gateway: cfg.Gateway.ID, Keys: cfg.Fleet.Keys, Dir: cfg.Fleet.Dir, Grace: cfg.Fleet.Grace})
	if a.trial {
		return nil
	}
	return a.update.Offer
}

// updateHost is the App as the updater sees it.
type updateHost struct{ a *App }

func (h updateHost) Health() ([]telemetry.DeviceState, bool) {
	r := h.a.current()
	if r == nil {
		return nil, false
	}
	return h.a.state(r).Devices, r.up.Connected()
}

// Ready: inside updates.window (the gateway's local time), with no remote
// config under its health check (one change at a time: a failure is then
// the release's or the config's, not both).
func (h updateHost) Ready(now time.Time) (bool, string) {
	r := h.a.current()
	if r == nil {
		return false, "the gateway is between setups"
	}
	if !r.cfg.Updates.Windows.Contains(now.Local()) {
		return false, "outside updates.window " + r.cfg.Updates.Windows.String()
	}
	if st := h.a.fleet.Status(); st.Checking != 0 {
		return false, "a remote config is under its health check"
	}
	return true, ""
}

func (h updateHost) Swap(t *update.Trial) {
	select {
	case h.a.swaps <- t:
	default:
	}
}
