package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Fleet is the gateways the cloud knows, as a rollout selects its group.
type Fleet interface {
	// Select returns the ids of the gateways carrying every label, and
	// the label keys no gateway carries at all.
	Select(labels map[string]string) (ids, unknownKeys []string)
}

// Options configure an Engine.
type Options struct {
	// Path is the SQLite file; "" keeps rollouts in memory.
	Path  string
	Kinds map[string]Kind
	Fleet Fleet
	Log   *slog.Logger
	// Metrics is where the engine's metrics go; nil for none.
	Metrics prometheus.Registerer
	// Tick is how often running rollouts are looked at (default 1 s).
	Tick time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// items are one gateway's signed item and revert.
type items struct{ item, revert []byte }

// Engine drives rollouts. It is safe for concurrent use.
type Engine struct {
	o  Options
	db *db
	m  *metrics

	mu       sync.Mutex
	rollouts map[string]*Rollout
	items    map[string]map[string]items
}

// Error is a request the engine refuses: Reason is its metric label and
// kind (not_found, conflict, or a reason the input was bad).
type Error struct {
	Reason string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Refusal reasons: NotFound and Conflict are about the rollout's state;
// the others about bad input.
const (
	NotFound = "not_found"
	Conflict = "conflict"
)

func refuse(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// New opens the rollouts kept at o.Path; Run drives them.
func New(o Options) (*Engine, error) {
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Log = o.Log.With("component", "rollout")
	d, err := openDB(o.Path)
	if err != nil {
		return nil, err
	}
	rs, its, err := d.load()
	if err != nil {
		d.close()
		return nil, fmt.Errorf("cannot read the rollouts in %s: %w", o.Path, err)
	}
	e := &Engine{o: o, db: d, rollouts: map[string]*Rollout{}, items: its}
	for _, r := range rs {
		e.rollouts[r.ID] = r
		if r.State.final() {
			delete(e.items, r.ID) // never sent again (kept in the file)
		}
		if r.State == Running || r.State == RollingBack || r.State == Paused {
			o.Log.Info("rollout resumed after a restart", "rollout", r.ID, "state", r.State, "step", r.Step)
		}
	}
	e.m = newMetrics(e)
	if o.Metrics != nil {
		o.Metrics.MustRegister(e.m)
	}
	return e, nil
}

// Close closes the store.
func (e *Engine) Close() error { return e.db.close() }

// Run drives the rollouts every tick until ctx is done.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.o.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.Tick()
		}
	}
}

// refused counts and returns a refusal.
func (e *Engine) refused(err *Error) error {
	e.m.refused.WithLabelValues(err.Reason).Inc()
	return err
}

// List returns every rollout, newest first.
func (e *Engine) List() []Summary {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Summary, 0, len(e.rollouts))
	for _, id := range slices.Backward(slices.Sorted(maps.Keys(e.rollouts))) {
		out = append(out, e.rollouts[id].summary())
	}
	return out
}

// Get returns a copy of rollout id.
func (e *Engine) Get(id string) (*Rollout, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.rollouts[id]
	if !ok {
		return nil, false
	}
	return r.clone(), true
}

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
		if _, _, newest := kind.Observe(gw, spec.Version); newest >= spec.Version {
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
	gw     string
	item   []byte
	revert bool
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
				sends = append(sends, send{gw: g.ID, item: e.items[id][g.ID].revert, revert: true})
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
		var good, bad Status
		switch {
		case g.Status == Sent:
			v, good, bad = r.Version, OK, Failed
		case g.Status == Reverting && !g.SentAt.IsZero():
			v, good, bad = r.RevertVersion, Reverted, RevertFailed
		default:
			continue
		}
		o, why, _ := kind.Observe(g.ID, v)
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

// IsRefusal says whether err is an Error and returns it.
func IsRefusal(err error) (*Error, bool) {
	var re *Error
	ok := errors.As(err, &re)
	return re, ok
}
