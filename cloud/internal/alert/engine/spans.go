package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
)

// Span is a time an alert fired, from its history: from a transition into
// firing to the next one out of it. Level changes within are one span.
type Span struct {
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Labels      map[string]string `json:"labels"`
	Start       time.Time         `json:"start"`
	// End is when it stopped firing; zero while it still fires (Open).
	End  time.Time `json:"end,omitzero"`
	Open bool      `json:"open,omitempty"`
}

// MaxSpanTransitions bounds the transitions FiringSpans reads; beyond it,
// it returns ErrTooManyTransitions.
const MaxSpanTransitions = 200_000

// ErrTooManyTransitions says a range holds more than MaxSpanTransitions.
var ErrTooManyTransitions = fmt.Errorf("more than %d alert transitions in the range", MaxSpanTransitions)

// FiringSpans returns the spans during which alerts of gateway gw (of one
// device when dev is set) fired that overlap [from, to), oldest first.
//
// An alert's history may interleave two timelines: the alert's own
// transitions, and those of a shadow that judged late data (older than
// what the alert had seen, docs/alerting.md). Both are marked backfilled
// when the data was late, but so are the alert's own transitions on a
// backlog, so the mark does not tell them apart; what a transition came
// from does (split): a backfilled transition that continues a shadow under
// way, or does not continue the alert's own state, is the shadow's. Each
// timeline is
// turned into spans and the two united, so a time is counted once. The
// alert's span still open has no End; a shadow's left open (the late data
// ended while it fired) ends at its last transition, which is what is
// known. The state at from is the alert's newest transition before it.
func (e *Engine) FiringSpans(ctx context.Context, gw, dev string, from, to time.Time) ([]Span, error) {
	e.mu.Lock()
	err := e.flush(ctx, false) // what was just judged is visible
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	type timeline struct {
		firing bool               // the alert's own state, as far as read
		before []alert.Transition // the newest before from
		in     []alert.Transition // in [from, to), oldest first
	}
	lines := map[string]*timeline{}
	line := func(fp string) *timeline {
		if lines[fp] == nil {
			lines[fp] = &timeline{}
		}
		return lines[fp]
	}
	// Before from: each alert's newest transition.
	fps, err := e.column(ctx, `SELECT DISTINCT fingerprint FROM history
		WHERE gateway = ? AND (? = '' OR device = ?) AND t < ?`, gw, dev, dev, from.UnixNano())
	if err != nil {
		return nil, err
	}
	for _, fp := range fps {
		rows, err := e.transitions(ctx, `SELECT data FROM history WHERE fingerprint = ? AND t < ?
			ORDER BY t DESC, id DESC LIMIT 1`, fp, from.UnixNano())
		if err != nil {
			return nil, err
		}
		if len(rows) == 1 {
			l := line(fp)
			l.before, l.firing = rows, rows[0].To == alert.Firing
		}
	}
	in, err := e.transitions(ctx, `SELECT data FROM history
		WHERE gateway = ? AND (? = '' OR device = ?) AND t >= ? AND t < ?
		ORDER BY t, id LIMIT ?`, gw, dev, dev, from.UnixNano(), to.UnixNano(), MaxSpanTransitions+1)
	if err != nil {
		return nil, err
	}
	if len(in) > MaxSpanTransitions {
		return nil, ErrTooManyTransitions
	}
	for _, t := range in {
		l := line(t.Fingerprint)
		l.in = append(l.in, t)
	}
	var out []Span
	for fp, l := range lines {
		own, shadow := split(l.in, l.firing)
		live := spansOf(append(l.before, own...), true)
		late := spansOf(shadow, false)
		for _, s := range unite(append(live, late...)) {
			if (s.Open || s.End.After(from)) && s.Start.Before(to) {
				s.Fingerprint = fp
				out = append(out, s)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out, nil
}

// split tells the alert's own transitions (oldest first) from a shadow's:
// a backfilled transition that continues a shadow still under way (pending
// or firing) is the shadow's; else one that continues the alert's own state
// (firing says whether it fired before the first) is the alert's; else it
// begins a shadow.
func split(ts []alert.Transition, firing bool) (own, shadow []alert.Transition) {
	var under alert.State // the shadow's state while it is under way
	for _, t := range ts {
		switch {
		case t.Backfilled && under != "" && t.From == under,
			t.Backfilled && (t.From == alert.Firing) != firing:
			shadow = append(shadow, t)
			under = ""
			if t.To == alert.Pending || t.To == alert.Firing {
				under = t.To
			}
		default:
			own = append(own, t)
			firing = t.To == alert.Firing
		}
	}
	return own, shadow
}

// spansOf turns one timeline of transitions, oldest first, into firing
// spans; the last is left open if open, else ended at the last transition.
func spansOf(ts []alert.Transition, open bool) []Span {
	var out []Span
	var cur *Span
	for _, t := range ts {
		switch {
		case t.To == alert.Firing && cur == nil:
			cur = &Span{Rule: t.Rule, Labels: t.Labels, Start: t.Time}
		case t.To != alert.Firing && cur != nil:
			cur.End = t.Time
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		if open {
			cur.Open = true
		} else {
			cur.End = ts[len(ts)-1].Time
		}
		out = append(out, *cur)
	}
	return out
}

// unite merges overlapping spans of one alert.
func unite(ss []Span) []Span {
	sort.Slice(ss, func(i, j int) bool { return ss[i].Start.Before(ss[j].Start) })
	var out []Span
	for _, s := range ss {
		n := len(out)
		if n > 0 && (out[n-1].Open || !s.Start.After(out[n-1].End)) {
			last := &out[n-1]
			if s.Open {
				last.Open, last.End = true, time.Time{}
			} else if !last.Open && s.End.After(last.End) {
				last.End = s.End
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

func (e *Engine) column(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := e.db.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read alert history: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (e *Engine) transitions(ctx context.Context, query string, args ...any) ([]alert.Transition, error) {
	rows, err := e.db.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read alert history: %w", err)
	}
	defer rows.Close()
	var out []alert.Transition
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		var t alert.Transition
		if err := json.Unmarshal(data, &t); err != nil {
			return nil, fmt.Errorf("stored alert transition: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
