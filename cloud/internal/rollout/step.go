package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// The engine's own work, at every tick: publish what a step needs, take
// the gateways' verdicts, move on, halt or finish.

// Tick looks at every rollout once: it publishes what is due, takes the
// gateways' verdicts, and moves rollouts on, halts or finishes them.
func (e *Engine) Tick() {
	e.mu.Lock()
	var ids []string
	for id, r := range e.rollouts {
		if r.State == Running || r.State == RollingBack || r.State == Paused || r.State == Halted && inFlight(r) {
			ids = append(ids, id)
		}
	}
	e.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		e.tick(id)
	}
}

func inFlight(r *Rollout) bool {
	return slices.ContainsFunc(r.Gateways, func(g Gateway) bool { return g.Status == Sent || g.Status == Reverting })
}

type send struct {
	gw   string
	item []byte
}

func (e *Engine) tick(id string) {
	e.mu.Lock()
	r := e.rollouts[id]
	kind := e.o.Kinds[r.Kind]
	var sends []send
	switch r.State {
	case Running:
		for _, g := range r.Gateways {
			if g.Step == r.Step && g.Status == Waiting {
				sends = append(sends, send{gw: g.ID, item: e.items[id][g.ID].item})
			}
		}
	case RollingBack:
		for _, g := range r.Gateways {
			if g.Status == Reverting && g.SentAt.IsZero() {
				sends = append(sends, send{gw: g.ID, item: e.items[id][g.ID].revert})
			}
		}
	}
	e.mu.Unlock()

	sent := map[string]error{}
	for _, s := range sends {
		if kind == nil {
			sent[s.gw] = fmt.Errorf("this cloud has no %q kind", r.Kind)
			continue
		}
		sent[s.gw] = kind.Publish(s.gw, s.item)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.o.Now()
	changed := false
	for i := range r.Gateways {
		g := &r.Gateways[i]
		err, ok := sent[g.ID]
		switch {
		case !ok:
		case err != nil:
			if g.Reason == "" {
				e.o.Log.Warn("rollout: cannot publish; trying again", "rollout", id, "gateway", g.ID, "err", err)
			}
			g.Reason, changed = "cannot publish (trying again): "+err.Error(), true
		case g.Status == Waiting && (r.State == RollingBack || r.State == RolledBack):
			// Rolled back while its item was on its way: its revert
			// follows at the next tick.
			g.Status, g.Reason, r.State, changed = Reverting, "", RollingBack, true
		case g.Status == Waiting:
			g.Status, g.SentAt, g.Reason, changed = Sent, now, "", true
		case g.Status == Reverting:
			g.SentAt, g.Reason, changed = now, "", true
		}
	}
	if kind != nil && e.observe(r, kind, now) {
		changed = true
	}
	if e.advance(r, now) {
		changed = true
	}
	if changed {
		r.Updated = now
		if err := e.db.save(r); err != nil {
			e.o.Log.Error("cannot keep the rollout", "rollout", id, "err", err)
		}
	}
}

// observe takes the verdicts of the gateways waited for. e.mu is held.
func (e *Engine) observe(r *Rollout, kind Kind, now time.Time) bool {
	changed := false
	timeout := time.Duration(r.StepTimeout)
	for i := range r.Gateways {
		g := &r.Gateways[i]
		var v uint64
		var item []byte
		var good, bad Status
		switch {
		case g.Status == Sent:
			v, item, good, bad = r.Version, e.items[r.ID][g.ID].item, OK, Failed
		case g.Status == Reverting && !g.SentAt.IsZero():
			v, item, good, bad = r.RevertVersion, e.items[r.ID][g.ID].revert, Reverted, RevertFailed
		default:
			continue
		}
		o, why, _ := kind.Observe(g.ID, v, item)
		switch {
		case o == Healthy:
			g.Status = good
		case o == Bad:
			g.Status, g.Reason = bad, telemetry.CutText(why, telemetry.MaxConfigErrorLen)
		case now.Sub(g.SentAt) > timeout:
			g.Status, g.Reason = bad, fmt.Sprintf("no healthy report of version %d within %v", v, timeout)
		default:
			continue
		}
		g.DoneAt, changed = now, true
		e.m.results.WithLabelValues(r.Kind, string(g.Status)).Inc()
		lvl := slog.LevelInfo
		if g.Status == bad {
			lvl = slog.LevelWarn
		}
		e.o.Log.Log(context.Background(), lvl, "rollout: gateway "+string(g.Status), "rollout", r.ID, "gateway", g.ID,
			"version", v, "reason", g.Reason)
	}
	return changed
}

// advance halts, moves on or finishes r after its gateways' verdicts.
// e.mu is held.
func (e *Engine) advance(r *Rollout, now time.Time) bool {
	switch r.State {
	case RollingBack:
		if inFlight(r) {
			return false
		}
		r.State = RolledBack
		delete(e.items, r.ID)
		n := 0
		for _, g := range r.Gateways {
			if g.Status == RevertFailed {
				n++
			}
		}
		r.event(now, "cloud", fmt.Sprintf("rolled back; %d gateways did not report the revert healthy", n))
		e.o.Log.Info("rollout rolled back", "rollout", r.ID, "revert_failed", n)
		return true
	case Running, Paused:
	default:
		return false
	}
	if r.Step >= r.Steps {
		return false
	}
	var size, failed, done int
	for _, g := range r.Gateways {
		if g.Step != r.Step {
			continue
		}
		size++
		switch g.Status {
		case Failed:
			failed++
			done++
		case OK:
			done++
		}
	}
	name := stepName(r.Step)
	if allowed := r.MaxFailures.Of(size, false); failed > allowed {
		r.State = Halted
		r.Reason = fmt.Sprintf("%s: %d of %d gateways failed, more than the %d allowed (max_failures %s)", name, failed, size,
			allowed, r.MaxFailures)
		r.event(now, "cloud", "halted: "+r.Reason)
		e.m.actions.WithLabelValues("halt").Inc()
		e.o.Log.Warn("rollout halted", "rollout", r.ID, "reason", r.Reason)
		return true
	}
	if done < size {
		return false
	}
	r.Step++
	what := fmt.Sprintf("%s done: %d ok, %d failed", name, size-failed, failed)
	if r.Step == r.Steps {
		r.State = Done
		what += "; rollout done"
	}
	r.event(now, "cloud", what)
	e.o.Log.Info("rollout step done", "rollout", r.ID, "step", r.Step-1, "ok", size-failed, "failed", failed, "state", r.State)
	return true
}

func stepName(step int) string {
	if step == 0 {
		return "canary"
	}
	return fmt.Sprintf("wave %d", step)
}
