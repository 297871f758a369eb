package uplink

import (
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// sendable returns the end (exclusive) of the items that may be sent now.
// While the wall clock is unsynced, for clock_wait after start, that ends
// before this run's first item: what was stamped in 1970 waits for the
// time to be known and is then re-stamped. The duration says when to look
// again while holding.
func (u *Uplink) sendable(now time.Time) (uint64, time.Duration) {
	next := u.o.Buffer.Next()
	if u.o.Clock == nil || next <= u.o.RunFirst || u.o.Clock.Known() {
		if u.holding.Load() {
			u.holding.Store(false)
			u.m.clockHold.Set(0)
			u.log.Info("clock set; sending what was held back, re-stamped")
		}
		return next, 0
	}
	if left := u.o.Started.Add(u.o.Config.ClockWait).Sub(now); left > 0 {
		if !u.holding.Load() {
			u.holding.Store(true)
			u.m.clockHold.Set(1)
			u.log.Warn("the wall clock is not set; holding readings back until it is, to re-stamp them",
				"clock_wait", u.o.Config.ClockWait, "wall_clock", now.UTC().Format(time.RFC3339))
		}
		return u.o.RunFirst, min(left, time.Second)
	}
	if !u.gaveUp {
		u.gaveUp = true
		u.holding.Store(false)
		u.m.clockHold.Set(0)
		u.log.Warn("the wall clock is still not set after clock_wait; sending readings flagged unsynced",
			"clock_wait", u.o.Config.ClockWait)
	}
	return next, 0
}

// restamp gives items of this run stamped while the clock was unsynced
// their true time, once it is known, and marks them re-stamped. Items it
// cannot place stay flagged unsynced.
func (u *Uplink) restamp(c *buffer.Chunk) {
	if u.o.Clock == nil {
		return
	}
	fix := func(t *time.Time, q *telemetry.ClockQuality) {
		if *q != telemetry.ClockUnsynced {
			return
		}
		if at, ok := u.o.Clock.Restamp(*t); ok {
			*t, *q = at, telemetry.ClockRestamped
			u.m.restamped.Inc()
		}
	}
	for i := range c.Readings {
		fix(&c.Readings[i].Time, &c.Readings[i].Clock)
	}
	for i := range c.Events {
		fix(&c.Events[i].Time, &c.Events[i].Clock)
	}
}
