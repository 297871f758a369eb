package engine

import (
	"context"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
)

// Run checks absence, causes, held events, silences and settling changes
// every Tick until ctx is done.
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
	e.forgetServed()
	e.see(now)
	if e.o.Registry != nil && !e.blind {
		gws, devs := e.served(e.o.Registry.Expected())
		e.checkField(gws, devs, now)
		e.checkAbsent(devs, now)
		e.fieldChecked = true
	}
	e.checkForecasts(now)
	e.checkHeld(now)
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
			if !e.settling[s] {
				s.settle = now // news of stale data that waits to settle keeps waiting
			}
			e.settling[s] = true
		}
	}
	e.m.setActive(counts)
	return e.publish(ctx, now)
}

// stepWall steps a wall-clock series and schedules what changed.
func (e *Engine) stepWall(s *series, v float64, now time.Time) { e.stepGated(s, v, now, true) }

// stepGated is stepWall with a gate: false forces "no level".
func (e *Engine) stepGated(s *series, v float64, now time.Time, gate bool) {
	from, changed := s.step(v, now, gate)
	if changed {
		e.touch(s)
		e.record(s, from, false)
		s.settle = now
		e.settling[s] = true
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
