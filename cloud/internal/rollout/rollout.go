// Package rollout is the cloud's staged rollouts (docs/fleet.md#rollouts):
// a change — a signed config today, a signed release later — goes to a
// group of gateways selected by labels, first to a canary share, then in
// waves; each step waits until every gateway in it reports the change
// running and healthy, or failed, or its step timeout passes; a step whose
// failures pass the threshold halts the rollout. An operator may pause it
// (no new step starts), resume it, and roll it back: the cloud publishes
// to every gateway it touched the signed revert the operator uploaded with
// it. The cloud never signs: every item it publishes was signed on the
// operator's machine.
//
// What a rollout changes is a Kind (kind.go); the engine (engine.go) drives
// the steps on a ticker and keeps every rollout in SQLite (db.go), so a
// cloud restarted mid-rollout carries on where it was.
package rollout

import (
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// State is a rollout's state.
type State string

// A rollout's states. Draft: created, its items being uploaded; Running:
// steps go out one after another; Paused: the step under way finishes,
// none starts; Halted: a step's failures passed the threshold (it stays
// so until rolled back); Done: every step succeeded; RollingBack and
// RolledBack: the operator's rollback under way and finished; Cancelled:
// a draft dropped before it started.
const (
	Draft       State = "draft"
	Running     State = "running"
	Paused      State = "paused"
	Halted      State = "halted"
	Done        State = "done"
	RollingBack State = "rolling_back"
	RolledBack  State = "rolled_back"
	Cancelled   State = "cancelled"
)

// States lists every state, for metrics.
var States = []State{Draft, Running, Paused, Halted, Done, RollingBack, RolledBack, Cancelled}

// holds says whether a rollout in state s holds its gateways: no other
// rollout may take them meanwhile.
func (s State) holds() bool {
	return s == Draft || s == Running || s == Paused || s == RollingBack
}

// final says whether a rollout in state s will never publish again.
func (s State) final() bool { return s == RolledBack || s == Cancelled }

// Status is one gateway's place in a rollout.
type Status string

// A gateway's statuses. Waiting: its step has not started; Sent: its item
// is published, no verdict yet; OK: it reports the version running and
// healthy; Failed: it refused it, rolled it back, or did not report it
// healthy within the step timeout; Reverting, Reverted, RevertFailed: the
// same for the operator's rollback.
const (
	Waiting      Status = "waiting"
	Sent         Status = "sent"
	OK           Status = "ok"
	Failed       Status = "failed"
	Reverting    Status = "reverting"
	Reverted     Status = "reverted"
	RevertFailed Status = "revert_failed"
)

// Statuses lists every gateway status, for metrics.
var Statuses = []Status{Waiting, Sent, OK, Failed, Reverting, Reverted, RevertFailed}

// Spec is what an operator asks for (POST /api/v1/rollouts).
type Spec struct {
	// Kind is what changes: "config".
	Kind string `json:"kind"`
	// Selector picks the group: labels every gateway must carry,
	// "county=laoshan,kind=river" (ParseSelector).
	Selector string `json:"selector"`
	// Canary is the first step's share of the group: "10%" (rounded up)
	// or a count; at least one gateway.
	Canary string `json:"canary"`
	// Waves is how many steps share the rest of the group, ≥ 1.
	Waves int `json:"waves"`
	// MaxFailures is how many failures a step tolerates: a count, or a
	// share of the step ("10%", rounded down); "" or "0": the first
	// failure halts the rollout.
	MaxFailures string `json:"max_failures,omitempty"`
	// StepTimeout is how long a gateway has to report the change healthy
	// after it was sent ("" for DefaultStepTimeout).
	StepTimeout telemetry.Duration `json:"step_timeout,omitempty"`
	// Version is the change's version on every gateway; the reverts
	// carry Version+1.
	Version uint64 `json:"version"`
}

// DefaultStepTimeout is a step's timeout when the spec gives none: the
// gateway's default grace period (2 m), a state interval (1 m) and slack.
const DefaultStepTimeout = 5 * time.Minute

// Head is what a rollout is and where it stands, in a list and in full.
type Head struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Selector string `json:"selector"`
	Version  uint64 `json:"version"`
	State    State  `json:"state"`
	// Step is the step under way, 0 the canary; Steps how many there
	// are.
	Step  int `json:"step"`
	Steps int `json:"steps"`
	// Reason says why it halted.
	Reason    string    `json:"reason,omitempty"`
	CreatedBy string    `json:"created_by"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
}

// Rollout is a rollout in full (GET /api/v1/rollouts/{id}).
type Rollout struct {
	Head
	Canary      Share              `json:"canary"`
	Waves       int                `json:"waves"`
	MaxFailures Share              `json:"max_failures"`
	StepTimeout telemetry.Duration `json:"step_timeout"`
	// RevertVersion is the version of the reverts, Version+1.
	RevertVersion uint64 `json:"revert_version"`
	// Gateways are the group, in the order of their steps.
	Gateways []Gateway `json:"gateways"`
	// Events are what happened, oldest first (at most MaxEvents).
	Events []Event `json:"events"`
}

// Gateway is one gateway of a rollout.
type Gateway struct {
	ID     string `json:"id"`
	Step   int    `json:"step"`
	Status Status `json:"status"`
	// Uploaded says its signed item and revert are in the cloud.
	Uploaded bool      `json:"uploaded"`
	SentAt   time.Time `json:"sent_at,omitzero"`
	DoneAt   time.Time `json:"done_at,omitzero"`
	// Reason says why it failed.
	Reason string `json:"reason,omitempty"`
}

// Event is one thing that happened to a rollout; By names the API token of
// an operator's action, "cloud" for the engine's own.
type Event struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	What string    `json:"what"`
}

// MaxEvents bounds a rollout's events; the oldest go first (the log keeps
// them all).
const MaxEvents = 200

// Summary is a rollout in a list (GET /api/v1/rollouts): its gateways
// counted by status.
type Summary struct {
	Head
	Gateways map[Status]int `json:"gateways"`
}

func (r *Rollout) summary() Summary {
	s := Summary{Head: r.Head, Gateways: map[Status]int{}}
	for _, g := range r.Gateways {
		s.Gateways[g.Status]++
	}
	return s
}

func (r *Rollout) event(at time.Time, by, what string) {
	r.Events = append(r.Events, Event{At: at, By: by, What: what})
	if n := len(r.Events) - MaxEvents; n > 0 {
		r.Events = append(r.Events[:0], r.Events[n:]...)
	}
	r.Updated = at
}

func (r *Rollout) clone() *Rollout {
	c := *r
	c.Gateways = append([]Gateway(nil), r.Gateways...)
	c.Events = append([]Event(nil), r.Events...)
	return &c
}
