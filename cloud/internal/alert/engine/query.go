package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
)

// ErrNotFound is returned for an unknown alert or silence; ErrNotFiring
// for an acknowledgement of an alert that does not fire.
var (
	ErrNotFound  = errors.New("not found")
	ErrNotFiring = errors.New("only a firing alert can be acknowledged")
)

// Filter selects alerts; empty fields match all.
type Filter struct {
	// State is active (pending or firing, the default), firing, pending,
	// resolved or all.
	State       string
	MinSeverity alert.Severity
	Gateway     string
	Site        string
	Rule        string
}

// Alerts lists alert instances, the most severe and newest first.
func (e *Engine) Alerts(f Filter) []alert.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []alert.Alert
	for _, s := range e.byFP {
		a := &s.A
		switch f.State {
		case "", "active":
			if a.State != alert.Pending && a.State != alert.Firing {
				continue
			}
		case "all":
			if a.State == alert.Inactive {
				continue
			}
		default:
			if string(a.State) != f.State {
				continue
			}
		}
		if a.Severity < f.MinSeverity || (f.Gateway != "" && a.Labels["gateway_id"] != f.Gateway) ||
			(f.Site != "" && a.Labels["site"] != f.Site) || (f.Rule != "" && a.Rule != f.Rule) {
			continue
		}
		out = append(out, e.snapshot(s))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Severity != out[j].Severity {
			return out[i].Severity > out[j].Severity
		}
		return out[i].Since.After(out[j].Since)
	})
	return out
}

// Alert returns one alert by fingerprint.
func (e *Engine) Alert(fp string) (alert.Alert, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.byFP[fp]
	if !ok {
		return alert.Alert{}, ErrNotFound
	}
	return e.snapshot(s), nil
}

func (e *Engine) snapshot(s *series) alert.Alert {
	a := s.A
	a.Labels = e.labels(s, a.Severity)
	a.Annotations = e.annotations(s, a.Severity)
	a.Flapping = s.Flap.On
	return a
}

// Ack acknowledges a firing alert: repeats stop until its level rises or
// it resolves.
func (e *Engine) Ack(ctx context.Context, fp, by, comment string) (alert.Alert, error) {
	if by == "" {
		return alert.Alert{}, fmt.Errorf("say who acknowledges (by)")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.byFP[fp]
	if !ok {
		return alert.Alert{}, ErrNotFound
	}
	if s.A.State != alert.Firing {
		return alert.Alert{}, fmt.Errorf("%w: alert %s is %s", ErrNotFiring, fp, s.A.State)
	}
	now := e.o.Now()
	s.A.Ack = &alert.Ack{By: by, At: now, Comment: comment}
	s.settle = now
	e.touch(s)
	e.settling[s] = true
	if err := e.publish(ctx, now); err != nil {
		return alert.Alert{}, err
	}
	return e.snapshot(s), nil
}

// Silences lists silences, newest first; expired ones only with all.
func (e *Engine) Silences(all bool) []alert.Silence {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.o.Now()
	var out []alert.Silence
	for _, si := range e.silences {
		if all || now.Before(si.EndsAt) {
			out = append(out, *si)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out
}

// AddSilence stores a silence (checked) and applies it at once.
func (e *Engine) AddSilence(ctx context.Context, si alert.Silence) (alert.Silence, error) {
	if err := si.Check(); err != nil {
		return alert.Silence{}, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	e.mu.Lock()
	defer e.mu.Unlock()
	si.ID, si.CreatedAt = hex.EncodeToString(b[:]), e.o.Now()
	if err := e.saveSilence(ctx, &si); err != nil {
		return alert.Silence{}, fmt.Errorf("cannot save the silence: %w", err)
	}
	e.silences = append(e.silences, &si)
	return si, e.remute(ctx)
}

// ExpireSilence ends a silence now.
func (e *Engine) ExpireSilence(ctx context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.o.Now()
	for _, si := range e.silences {
		if si.ID == id {
			if si.EndsAt.After(now) {
				si.EndsAt = now
			}
			if err := e.saveSilence(ctx, si); err != nil {
				return fmt.Errorf("cannot save the silence: %w", err)
			}
			return e.remute(ctx)
		}
	}
	return ErrNotFound
}

// remute re-judges muting of every alert receivers know or should know.
func (e *Engine) remute(ctx context.Context) error {
	now := e.o.Now()
	for _, s := range e.byFP {
		if s.A.State == alert.Firing || s.Pub.Firing {
			s.settle = now
			e.settling[s] = true
		}
	}
	return e.publish(ctx, now)
}

// HistoryQuery selects transitions.
type HistoryQuery struct {
	Gateway, Fingerprint string
	From, To             time.Time
	Limit                int // default and cap 1000
}

// History returns transitions, newest first.
func (e *Engine) History(ctx context.Context, q HistoryQuery) ([]alert.Transition, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 1000
	}
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.From.IsZero() {
		from = q.From.UnixNano()
	}
	if !q.To.IsZero() {
		to = q.To.UnixNano()
	}
	e.mu.Lock()
	err := e.flush(ctx, false) // what was just judged is visible
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	rows, err := e.db.sql.QueryContext(ctx, `SELECT data FROM history
		WHERE (? = '' OR gateway = ?) AND (? = '' OR fingerprint = ?) AND t >= ? AND t < ?
		ORDER BY t DESC, id DESC LIMIT ?`, q.Gateway, q.Gateway, q.Fingerprint, q.Fingerprint,
		from, to, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("cannot read alert history: %w", err)
	}
	defer rows.Close()
	out := []alert.Transition{}
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		var t alert.Transition
		if err := json.Unmarshal(data, &t); err == nil {
			out = append(out, t)
		}
	}
	return out, rows.Err()
}
