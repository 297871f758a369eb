package uplink

import (
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// StateDebounce is the least time between a state message and one
// published because a device's health changed: changes within it are
// published together when it is up.
const StateDebounce = 2 * time.Second

// StateChanged asks for the retained state to be published soon, because a
// device's health changed. It never blocks: the buses and stream devices
// call it from their goroutines. The first change after a quiet spell goes
// out at once; the changes that follow within StateDebounce of a state
// message go out together in one, when it is up. While disconnected the
// state is published on connect anyway.
func (u *Uplink) StateChanged() {
	select {
	case u.changed <- struct{}{}:
	default: // one is pending already
	}
}

// debounce spaces the state messages published on change. Owned by Run's
// goroutine; times are passed in.
type debounce struct {
	every   time.Duration
	last    time.Time // the last state message
	pending bool      // a change not yet published
}

// changed notes a change to publish.
func (d *debounce) changed() { d.pending = true }

// published notes a state message sent at now, whatever its reason: it
// carries every change so far.
func (d *debounce) published(now time.Time) { d.last, d.pending = now, false }

// due reports whether a pending change may be published now, or else how
// long until it may (0 when nothing is pending).
func (d *debounce) due(now time.Time) (bool, time.Duration) {
	if !d.pending {
		return false, 0
	}
	if wait := d.last.Add(d.every).Sub(now); wait > 0 {
		return false, wait
	}
	return true, 0
}

// publishState publishes the gateway's state, retained.
func (u *Uplink) publishState(state string) {
	s := u.o.State()
	now := u.o.now()
	s.State = state
	s.Time = now.UTC()
	s.Buffered = u.o.Buffer.Stats().Readings
	s.Heartbeat = telemetry.Duration(u.o.Config.StateInterval)
	s.Accepts = accepts
	data, err := telemetry.EncodeState(s)
	if err != nil {
		u.log.Error("cannot encode state", "err", err)
		return
	}
	tok := u.conn.client.Publish(telemetry.StateTopic(u.o.Gateway), 1, true, data)
	u.stateDue.published(now)
	if state == telemetry.StateOffline {
		tok.WaitTimeout(2 * time.Second)
	}
}
