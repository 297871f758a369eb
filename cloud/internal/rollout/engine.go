package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// CountMalformed counts a request refused before it reached the engine
// (a body that is not a spec, or too large).
func (e *Engine) CountMalformed() { e.m.refused.WithLabelValues("malformed").Inc() }

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

// IsRefusal says whether err is an Error and returns it.
func IsRefusal(err error) (*Error, bool) {
	var re *Error
	ok := errors.As(err, &re)
	return re, ok
}
