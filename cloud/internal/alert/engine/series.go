package engine

import (
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/trend"
)

// skey identifies one series of one rule: a device's metric, a site
// (composite), or a device (nodata).
type skey struct {
	rule         int32
	gw, dev, met string
}

// series is one rule's state for one series: the alert instance and what
// its evaluation needs to continue (timers, windows), all of it persisted.
type series struct {
	rule    *crule
	key     skey
	skip    bool      // the selector does not match this series
	recheck time.Time // when to ask the selector again (wall time)

	A      alert.Alert   `json:"alert"`
	Levels []rules.Level `json:"-"`
	Source string        `json:"source"`
	Cur    int           `json:"cur"`            // 1-based index of the firing level, 0 none
	Lower  time.Time     `json:"lower,omitzero"` // when a lower level (or none) began to hold while firing
	Last   time.Time     `json:"last,omitzero"`  // event-time watermark of the live path
	Known  time.Time     `json:"known,omitzero"` // nodata: when the device was first expected
	Win    *window       `json:"win,omitempty"`
	Acc    *accumulator  `json:"acc,omitempty"`
	Flap   flapper       `json:"flap"`
	Pub    published     `json:"pub"`
	// Event rules: until when the last setting event holds the alert (wall
	// time, zero without hold), whether a clearing event came since, and
	// the last setting event's key.
	Unit string `json:"unit,omitempty"` // of the measure, for explanations
	// Forecast rules: the trend window, and of the newest fit the expected
	// crossing (zero: none), the slope (units an hour) and the line's value.
	Trend   *trend.Window `json:"trend,omitempty"`
	Cross   time.Time     `json:"cross,omitzero"`
	Slope   float64       `json:"slope,omitempty"`
	Fitted  float64       `json:"fitted,omitempty"`
	Held    time.Time     `json:"held,omitzero"`
	Cleared bool          `json:"cleared,omitempty"`
	EvKey   string        `json:"ev_key,omitempty"`
	// shadow judges late data (older than Last) apart from the live state:
	// its transitions go to history as backfilled, never to receivers.
	shadow   *series
	shadowOf *series // set on a shadow
	// settle is when a change judged on stale event time may be published
	// (wall time), zero when nothing waits.
	settle   time.Time
	dirty    bool // changed since the last write
	winDirty bool // its window or accumulator moved since the last checkpoint

	// What explains it now, recomputed by every check (not persisted): the
	// cause in words (English, Chinese), the devices it covers (a gateway's
	// or bus's alert), the nodata rule that tunes a DeviceSilent series,
	// the bus a device is on.
	why, whyCN string
	members    []string
	tuned      *crule
	bus        string
}

// published is what receivers were last told.
type published struct {
	Firing   bool           `json:"firing"`
	Severity alert.Severity `json:"severity"`
	Flapping bool           `json:"flapping"`
	Acked    bool           `json:"acked"`
	Muted    bool           `json:"muted"`
	Sent     bool           `json:"sent"` // anything was ever published
}

// want is the highest level that holds for v: the current level until its
// clear condition releases it, any other level by its set condition
// (Kapacitor's per-level reset semantics).
func (s *series) want(v float64) int {
	for i := len(s.Levels); i >= 1; i-- {
		l := &s.Levels[i-1]
		th := *l.Set
		if i == s.Cur {
			th = *l.Clear
		}
		if holds(l.Op, v, th) {
			return i
		}
	}
	return 0
}

func holds(op string, v, th float64) bool {
	switch op {
	case "<":
		return v < th
	case "<=":
		return v <= th
	case ">":
		return v > th
	default:
		return v >= th
	}
}

// step judges value v measured at t; gate false forces "no level". It
// returns the state before, and whether the instance changed.
func (s *series) step(v float64, t time.Time, gate bool) (from alert.State, changed bool) {
	r := s.rule
	w := 0
	if gate {
		w = s.want(v)
	}
	s.Flap.record(w)
	a := &s.A
	from = a.State
	a.Value, a.EvaluatedAt = v, t
	switch a.State {
	case alert.Inactive, alert.Resolved, "":
		if w == 0 {
			return from, false
		}
		a.ActiveAt, a.Since = t, t
		if r.For > 0 {
			a.State = alert.Pending
			return from, true
		}
		s.fire(w, t)
	case alert.Pending:
		switch {
		case w == 0:
			a.State, a.Since = alert.Inactive, t
		case t.Sub(a.ActiveAt) >= r.For:
			s.fire(w, t)
		default:
			return from, false
		}
	case alert.Firing:
		switch {
		case w > s.Cur:
			s.Cur, s.Lower = w, time.Time{}
			a.Severity, a.Since, a.Ack = s.Levels[w-1].Severity, t, nil
		case w == s.Cur:
			s.Lower = time.Time{}
			return from, false
		default:
			if s.Lower.IsZero() {
				s.Lower = t
			}
			if t.Sub(s.Lower) < r.ClearFor {
				return from, false
			}
			s.Lower = time.Time{}
			if w == 0 {
				s.Cur = 0
				a.State, a.EndsAt, a.Since, a.Ack = alert.Resolved, t, t, nil
			} else {
				s.Cur = w
				a.Severity, a.Since = s.Levels[w-1].Severity, t
			}
		}
	}
	return from, true
}

func (s *series) fire(w int, t time.Time) {
	a := &s.A
	s.Cur, s.Lower = w, time.Time{}
	a.State, a.Severity, a.StartsAt, a.EndsAt, a.Since, a.Ack = alert.Firing, s.Levels[w-1].Severity, t, time.Time{}, t, nil
}

// flapper detects flapping as Nagios and Kapacitor do: the share of the
// last 21 judgements that changed the level; flapping above 0.5, settled
// below 0.25.
type flapper struct {
	Bits uint32 `json:"bits"` // 1 = that judgement changed the level
	N    uint8  `json:"n"`
	Prev int8   `json:"prev"`
	On   bool   `json:"on"`
}

const flapHistory = 21

func (f *flapper) record(level int) {
	changed := uint32(0)
	if f.N > 0 && int(f.Prev) != level {
		changed = 1
	}
	f.Prev = int8(level)
	f.Bits = (f.Bits<<1 | changed) & (1<<flapHistory - 1)
	if f.N < flapHistory {
		f.N++
	}
	if f.N < flapHistory {
		return
	}
	ratio := float64(popcount(f.Bits)) / flapHistory
	if !f.On && ratio > 0.5 {
		f.On = true
	} else if f.On && ratio < 0.25 {
		f.On = false
	}
}

func popcount(x uint32) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}
