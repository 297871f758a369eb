package rollout

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// The operators' actions: create (a draft), upload, start, pause, resume,
// cancel, roll back. Each is checked against the rollout's state under the
// engine's lock, kept, logged with the caller's name and recorded among the
// rollout's events.

func newID(now time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// Create plans a rollout of spec for the gateways its selector picks now,
// as a draft: its items are uploaded next (Upload), then it is started.
func (e *Engine) Create(spec Spec, by string) (*Rollout, error) {
	kind, ok := e.o.Kinds[spec.Kind]
	if !ok {
		return nil, e.refused(refuse("unknown_kind", "kind: %q is not one of %s", spec.Kind,
			strings.Join(slices.Sorted(maps.Keys(e.o.Kinds)), ", ")))
	}
	labels, err := ParseSelector(spec.Selector)
	if err != nil {
		return nil, e.refused(refuse("bad_selector", "selector: %v", err))
	}
	canary, err := ParseShare(spec.Canary)
	if err != nil || canary.Of(100, true) == 0 {
		return nil, e.refused(refuse("bad_canary", "canary: %q is not a count of at least 1 or a percentage above 0%%", spec.Canary))
	}
	if spec.Waves < 1 || spec.Waves > 100 {
		return nil, e.refused(refuse("bad_waves", "waves: %d is outside 1..100", spec.Waves))
	}
	maxFail := Share{}
	if spec.MaxFailures != "" {
		if maxFail, err = ParseShare(spec.MaxFailures); err != nil {
			return nil, e.refused(refuse("bad_max_failures", "max_failures: %v", err))
		}
	}
	timeout := time.Duration(spec.StepTimeout)
	if timeout == 0 {
		timeout = DefaultStepTimeout
	}
	if timeout < time.Second || timeout > 24*time.Hour {
		return nil, e.refused(refuse("bad_step_timeout", "step_timeout: %v is outside 1s..24h", timeout))
	}
	if spec.Version == 0 || spec.Version == ^uint64(0) {
		return nil, e.refused(refuse("bad_version", "version: must be from 1 (its reverts take the next one)"))
	}
	ids, unknown := e.o.Fleet.Select(labels)
	if len(unknown) > 0 {
		return nil, e.refused(refuse("unknown_labels", "selector: no gateway has the label %s", strings.Join(unknown, ", ")))
	}
	if len(ids) == 0 {
		return nil, e.refused(refuse("unknown_labels", "selector: no gateway has the labels %s", FormatSelector(labels)))
	}
	for _, gw := range ids {
		if _, _, newest := kind.Observe(gw, spec.Version, nil); newest >= spec.Version {
			return nil, e.refused(refuse("old_version", "version: gateway %s has seen %s version %d; this rollout's must be higher",
				gw, spec.Kind, newest))
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range e.rollouts {
		if o.State == Cancelled {
			continue
		}
		for _, g := range o.Gateways {
			if !slices.Contains(ids, g.ID) {
				continue
			}
			if o.State.holds() {
				return nil, e.refused(refuse(Conflict, "gateway %s is in rollout %s (%s): one rollout at a time per gateway",
					g.ID, o.ID, o.State))
			}
			if o.Kind == spec.Kind && o.RevertVersion >= spec.Version {
				return nil, e.refused(refuse("old_version", "version: rollout %s used %s versions %d and %d on gateway %s; this rollout's must be higher",
					o.ID, o.Kind, o.Version, o.RevertVersion, g.ID))
			}
		}
	}
	now := e.o.Now()
	r := &Rollout{Head: Head{ID: newID(now), Kind: spec.Kind, Selector: FormatSelector(labels), Version: spec.Version,
		State: Draft, CreatedBy: by, Created: now, Updated: now}, Canary: canary, Waves: spec.Waves,
		MaxFailures: maxFail, StepTimeout: telemetry.Duration(timeout), RevertVersion: spec.Version + 1}
	for i, step := range Plan(ids, r.ID, canary, spec.Waves) {
		for _, gw := range step {
			r.Gateways = append(r.Gateways, Gateway{ID: gw, Step: i, Status: Waiting})
		}
		r.Steps = i + 1
	}
	r.event(now, by, fmt.Sprintf("created: %s version %d to %d gateways (%s), canary %d, then %d waves",
		r.Kind, r.Version, len(r.Gateways), r.Selector, countStep(r, 0), r.Steps-1))
	if err := e.db.save(r); err != nil {
		return nil, fmt.Errorf("cannot keep the rollout: %w", err)
	}
	e.rollouts[r.ID] = r
	e.items[r.ID] = map[string]items{}
	e.m.actions.WithLabelValues("create").Inc()
	e.o.Log.Info("rollout created", "rollout", r.ID, "kind", r.Kind, "version", r.Version, "selector", r.Selector,
		"gateways", len(r.Gateways), "steps", r.Steps, "by", by)
	return r.clone(), nil
}

func countStep(r *Rollout, step int) int {
	n := 0
	for _, g := range r.Gateways {
		if g.Step == step {
			n++
		}
	}
	return n
}

// Upload keeps one of gateway gw's signed items for draft id: which is
// "item" (the change, at the rollout's version) or "revert" (what the
// gateway ran before, at the revert version). It returns the gateway.
func (e *Engine) Upload(id, gw, which string, data []byte, by string) (Gateway, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.rollouts[id]
	if !ok {
		return Gateway{}, e.refused(refuse(NotFound, "no rollout %s", id))
	}
	if r.State != Draft {
		return Gateway{}, e.refused(refuse(Conflict, "rollout %s is %s: items are uploaded to a draft", id, r.State))
	}
	i := slices.IndexFunc(r.Gateways, func(g Gateway) bool { return g.ID == gw })
	if i < 0 {
		return Gateway{}, e.refused(refuse("other_gateway", "gateway %s is not in rollout %s", gw, id))
	}
	want := r.Version
	switch which {
	case "item":
	case "revert":
		want = r.RevertVersion
	default:
		return Gateway{}, e.refused(refuse(NotFound, "%q is neither item nor revert", which))
	}
	v, err := e.o.Kinds[r.Kind].Check(gw, data)
	if err != nil {
		return Gateway{}, e.refused(refuse("bad_item", "%s: %v", which, err))
	}
	if v != want {
		return Gateway{}, e.refused(refuse("bad_item", "%s: version %d, not the rollout's %d", which, v, want))
	}
	if err := e.db.saveItem(id, gw, which, data); err != nil {
		return Gateway{}, fmt.Errorf("cannot keep the item: %w", err)
	}
	it := e.items[id][gw]
	if which == "item" {
		it.item = slices.Clone(data)
	} else {
		it.revert = slices.Clone(data)
	}
	e.items[id][gw] = it
	g := &r.Gateways[i]
	g.Uploaded = it.item != nil && it.revert != nil
	r.Updated = e.o.Now()
	if err := e.db.save(r); err != nil {
		return Gateway{}, fmt.Errorf("cannot keep the rollout: %w", err)
	}
	e.m.actions.WithLabelValues("upload").Inc()
	e.o.Log.Info("rollout item uploaded", "rollout", id, "gateway", gw, "which", which, "version", v, "by", by)
	return *g, nil
}

// act applies an operator's action to rollout id under the lock: do
// checks the state and changes it, returning a refusal or what happened.
func (e *Engine) act(id, action, by string, do func(r *Rollout, now time.Time) (string, *Error)) (*Rollout, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.rollouts[id]
	if !ok {
		return nil, e.refused(refuse(NotFound, "no rollout %s", id))
	}
	now := e.o.Now()
	before := r.clone()
	what, rerr := do(r, now)
	if rerr != nil {
		return nil, e.refused(rerr)
	}
	r.event(now, by, what)
	if err := e.db.save(r); err != nil {
		e.rollouts[id] = before
		return nil, fmt.Errorf("cannot keep the rollout: %w", err)
	}
	e.m.actions.WithLabelValues(action).Inc()
	e.o.Log.Info("rollout "+action, "rollout", id, "state", r.State, "step", r.Step, "what", what, "by", by)
	return r.clone(), nil
}

// Start starts draft id once every gateway's items are uploaded.
func (e *Engine) Start(id, by string) (*Rollout, error) {
	return e.act(id, "start", by, func(r *Rollout, _ time.Time) (string, *Error) {
		if r.State != Draft {
			return "", refuse(Conflict, "rollout %s is %s, not a draft", r.ID, r.State)
		}
		var missing []string
		for _, g := range r.Gateways {
			if !g.Uploaded {
				missing = append(missing, g.ID)
			}
		}
		if len(missing) > 0 {
			return "", refuse("missing_items", "no signed items uploaded for %d gateways: %s", len(missing),
				strings.Join(missing, ", "))
		}
		r.State = Running
		return "started", nil
	})
}

// Pause stops rollout id from starting another step; the one under way
// goes on.
func (e *Engine) Pause(id, by string) (*Rollout, error) {
	return e.act(id, "pause", by, func(r *Rollout, _ time.Time) (string, *Error) {
		if r.State != Running {
			return "", refuse(Conflict, "rollout %s is %s: only a running rollout can be paused", r.ID, r.State)
		}
		r.State = Paused
		return fmt.Sprintf("paused at step %d", r.Step), nil
	})
}

// Resume lets paused rollout id go on.
func (e *Engine) Resume(id, by string) (*Rollout, error) {
	return e.act(id, "resume", by, func(r *Rollout, _ time.Time) (string, *Error) {
		if r.State != Paused {
			return "", refuse(Conflict, "rollout %s is %s: only a paused rollout can be resumed", r.ID, r.State)
		}
		r.State = Running
		return "resumed", nil
	})
}

// Cancel drops draft id.
func (e *Engine) Cancel(id, by string) (*Rollout, error) {
	return e.act(id, "cancel", by, func(r *Rollout, _ time.Time) (string, *Error) {
		if r.State != Draft {
			return "", refuse(Conflict, "rollout %s is %s: only a draft can be cancelled (roll it back instead)", r.ID, r.State)
		}
		r.State = Cancelled
		delete(e.items, r.ID)
		return "cancelled", nil
	})
}

// Rollback publishes its revert to every gateway rollout id sent its item
// to; gateways never sent it are left alone.
func (e *Engine) Rollback(id, by string) (*Rollout, error) {
	return e.act(id, "rollback", by, func(r *Rollout, _ time.Time) (string, *Error) {
		switch r.State {
		case Running, Paused, Halted, Done:
		default:
			return "", refuse(Conflict, "rollout %s is %s: it cannot be rolled back", r.ID, r.State)
		}
		for _, o := range e.rollouts {
			if o.ID <= r.ID || o.State == Cancelled {
				continue
			}
			for _, g := range o.Gateways {
				if slices.ContainsFunc(r.Gateways, func(mine Gateway) bool { return mine.ID == g.ID && touched(mine.Status) }) {
					return "", refuse(Conflict, "gateway %s is in rollout %s, newer: roll that one back instead", g.ID, o.ID)
				}
			}
		}
		n := 0
		for i := range r.Gateways {
			if g := &r.Gateways[i]; touched(g.Status) {
				g.Status, g.SentAt, g.DoneAt, g.Reason = Reverting, time.Time{}, time.Time{}, ""
				n++
			}
		}
		r.State = RollingBack
		if n == 0 {
			r.State = RolledBack
		}
		return fmt.Sprintf("rolling back %d gateways to what they ran before (version %d)", n, r.RevertVersion), nil
	})
}

// touched says whether a gateway in status s was sent the rollout's item.
func touched(s Status) bool { return s == Sent || s == OK || s == Failed }
