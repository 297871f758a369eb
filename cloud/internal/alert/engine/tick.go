package engine

import (
	"context"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
)

// Run checks no-data, offline gateways, silences and settling changes
// every Tick until ctx is done, then saves the state.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.o.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("alert check failed; retrying", "err", err)
			}
		}
	}
}

// Tick runs one round of the wall-clock checks.
func (e *Engine) Tick(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.o.Now()
	if e.o.Registry != nil {
		gws, devs := e.o.Registry.Expected()
		e.checkGateways(gws, now)
		e.checkDevices(devs, now)
	}
	counts := map[alert.Severity]int{}
	for _, s := range e.series {
		if s.skip {
			continue
		}
		if s.A.State == alert.Firing {
			counts[s.A.Severity]++
		}
		if !s.Pub.Firing && s.A.State != alert.Firing {
			continue
		}
		silenced, inhibited := len(s.A.Silenced), s.A.InhibitedBy
		e.mute(s, now)
		if len(s.A.Silenced) != silenced || s.A.InhibitedBy != inhibited {
			s.settle = now
			e.settling[s] = true
		}
	}
	e.m.setActive(counts)
	return e.publish(ctx, now)
}

// checkGateways steps every gateway's offline alert; a gateway whose alert
// is pending or firing mutes its devices' alerts.
func (e *Engine) checkGateways(gws []registry.GatewayView, now time.Time) {
	if e.gwRule == nil {
		return
	}
	clear(e.muting)
	for _, g := range gws {
		s := e.builtinSeries(e.gwRule, g.ID, g.Site, "")
		v := 0.0 // like a no-data measure, it fires beyond 1
		if g.State == registry.Offline {
			v = 2
		}
		e.stepWall(s, v, now)
		if s.A.State == alert.Pending || s.A.State == alert.Firing {
			e.muting[g.ID] = s.A.Fingerprint
		}
	}
}

// checkDevices steps the no-data alerts of every expected device: the
// built-in one and the no-data rules that select it. A device that never
// reported is timed from when the engine first expected it.
func (e *Engine) checkDevices(devs []registry.Expected, now time.Time) {
	checks := append([]*crule{e.devRule}, e.nodata...)
	for _, d := range devs {
		if d.Quiet {
			continue
		}
		for _, c := range checks {
			if c == nil || (c != e.devRule && !c.Select.Matches(d.Gateway, d.Site, d.Device, d.Profile)) {
				continue
			}
			s := e.builtinSeries(c, d.Gateway, d.Site, d.Device)
			if s.Known.IsZero() {
				s.Known = now
				e.touch(s)
			}
			last := d.LastSeen
			if last.IsZero() {
				last = s.Known
			}
			limit := time.Duration(e.o.Silence * float64(d.Interval))
			if c.NoData != nil {
				limit = time.Duration(c.NoData.After * float64(d.Interval))
				if c.NoData.Timeout > 0 {
					limit = c.NoData.Timeout
				}
			}
			if limit <= 0 {
				continue
			}
			e.stepWall(s, float64(now.Sub(last))/float64(limit), now)
		}
	}
}

func (e *Engine) builtinSeries(c *crule, gw, site, dev string) *series {
	k := skey{c.idx, gw, dev, ""}
	s, ok := e.series[k]
	if !ok {
		s = e.newSeries(c, k, site, "")
		e.series[k] = s
	}
	return s
}

// stepWall steps a wall-clock series and schedules what changed.
func (e *Engine) stepWall(s *series, v float64, now time.Time) {
	from, changed := s.step(v, now, true)
	if changed {
		e.touch(s)
		e.record(s, from, false)
		s.settle = now
		e.settling[s] = true
	}
}
