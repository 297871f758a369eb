package engine

import (
	"slices"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Events are rule inputs like readings (rules of kind event): a buoy's
// drift, a buffer gap (data the gateway had to drop), a clock change, a
// quarantined device, a buffer nearly full, a tag at a reader, a lost
// connection. One alert per rule and device: a setting event raises it
// with its value, a clearing event or the rule's hold ends it; an absence
// rule fires when a device sends no such events for a while.

// observeEvent judges one event of a batch; it reports the series that
// changed.
func (e *Engine) observeEvent(gw, site string, ev *telemetry.Event, now time.Time, pub []*series) []*series {
	for _, c := range e.absentBy[ev.Kind] {
		if s := e.eventSeries(c, gw, site, ev.Device, now); s != nil && ev.Time.After(s.Last) {
			s.Last = ev.Time
			e.windowMoved(s)
		}
	}
	for _, c := range e.events[ev.Kind] {
		spec := c.Event
		set := attrsMatch(ev.Attrs, spec.Match) && !slices.Contains(spec.KeyNotIn, ev.Key)
		clears := len(spec.Clear) > 0 && attrsMatch(ev.Attrs, spec.Clear)
		if !set && !clears {
			continue
		}
		s := e.eventSeries(c, gw, site, ev.Device, now)
		if s == nil {
			continue
		}
		if !ev.Time.After(s.Last) && !s.Last.IsZero() {
			e.m.skip("late")
			continue // seen already (a replay, a newer version of a tag event), or older than what was judged
		}
		s.Last = ev.Time
		v := 0.0
		if set {
			v = 1
			if spec.Value != "" {
				x, ok := ev.Values[spec.Value]
				if !ok {
					e.m.skip("no_value")
					continue
				}
				v = x
			}
			s.Held, s.Cleared, s.EvKey, s.Unit = now.Add(spec.Hold), false, ev.Key, spec.Unit
			if spec.Hold == 0 {
				s.Held = time.Time{}
			}
		} else {
			s.Cleared = true
		}
		// An event is news when it arrives: one from a backlog, or stamped
		// by an unset clock, is judged at its arrival, so that for and
		// clear_for run from then, as they do between events (checkHeld).
		t := ev.Time
		if t.Before(now.Add(-e.o.LateAfter)) || t.After(now) || ev.Clock == telemetry.ClockUnsynced {
			t = now
		}
		from, flapping := s.A.State, s.Flap.On
		_, changed := s.step(v, t, set)
		if changed || s.Flap.On != flapping {
			e.touch(s)
			e.record(s, from, false)
			pub = append(pub, s)
		} else {
			e.touch(s) // held, cleared, key
		}
	}
	return pub
}

func attrsMatch(attrs, want map[string]string) bool {
	for k, v := range want {
		if attrs[k] != v {
			return false
		}
	}
	return true
}

// eventSeries is rule c's series for a device's events, nil when the
// selector does not take the device.
func (e *Engine) eventSeries(c *crule, gw, site, dev string, now time.Time) *series {
	return e.get(c, gw, site, dev, "", now)
}

// checkHeld moves event alerts on with the wall clock: a hold that ran
// out or a clearing event ends the condition, and for and clear_for run
// between events.
func (e *Engine) checkHeld(now time.Time) {
	for s := range e.evSeries {
		if s.A.State != alert.Pending && s.A.State != alert.Firing {
			continue
		}
		c := s.rule
		if c.Event.Absent > 0 {
			continue // judged with the devices
		}
		on := !s.Cleared && (s.Held.IsZero() || now.Before(s.Held))
		if c.Event.Hold == 0 && len(c.Event.Clear) == 0 {
			on = true
		}
		e.stepGated(s, s.A.Value, now, on)
	}
}

// checkAbsent judges absence rules: a device that sends such events (a
// reader; quiet devices are expected to) and has sent none for the rule's
// span.
func (e *Engine) checkAbsent(devs []registry.Expected, now time.Time) {
	if len(e.absent) == 0 {
		return
	}
	for _, d := range devs {
		for _, c := range e.absent {
			k := skey{c.idx, d.Gateway, d.Device, ""}
			s, seen := e.series[k]
			if seen && s.skip {
				continue
			}
			if !seen {
				if !d.Quiet || !c.Select.Matches(d.Gateway, d.Site, d.Device, d.Profile) {
					continue // not a device that sends such events
				}
				s = e.eventSeries(c, d.Gateway, d.Site, d.Device, now)
				if s == nil {
					continue
				}
			}
			if s.Known.IsZero() {
				s.Known = now
				e.touch(s)
			}
			if e.downNow[d.Gateway] {
				e.stepWall(s, hold(s), now)
				continue
			}
			last := s.Last
			if last.IsZero() {
				last = s.Known
			}
			silence := e.sight.heard(later(last, e.upAt[d.Gateway]), now)
			if s.A.State == alert.Firing {
				silence = now.Sub(last)
			}
			s.why = "no " + c.Event.Kind + " event for " + roundDur(silence) + " (allowed " + roundDur(c.Event.Absent) + ")"
			s.whyCN = "已 " + roundDur(silence) + " 没有 " + c.Event.Kind + " 事件（允许 " + roundDur(c.Event.Absent) + "）"
			e.stepWall(s, float64(silence)/float64(c.Event.Absent), now)
		}
	}
}
