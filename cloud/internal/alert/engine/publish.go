package engine

import (
	"context"
	"strconv"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
)

// publish tells the sink about every series whose news is due, after the
// state that caused it is durable. On failure the series stay due and the
// next tick tries again.
func (e *Engine) publish(ctx context.Context, now time.Time) error {
	var out []alert.Alert
	var who []*series
	var want []published
	for s := range e.settling {
		if s.settle.After(now) {
			continue
		}
		delete(e.settling, s)
		e.mute(s, now)
		d := e.desired(s)
		if d == s.Pub {
			continue
		}
		out, who, want = append(out, e.view(s, d)), append(who, s), append(want, d)
	}
	retry := func(err error) error {
		for _, s := range who {
			s.settle = now
			e.settling[s] = true
		}
		return err
	}
	if err := e.flush(ctx, false); err != nil {
		return retry(err)
	}
	if len(out) == 0 {
		return nil
	}
	if e.o.Sink != nil {
		if err := e.o.Sink.Update(ctx, out); err != nil {
			e.m.sinkError()
			return retry(err)
		}
	}
	for i, s := range who {
		s.Pub, s.A.Seq = want[i], out[i].Seq
		e.touch(s)
		e.m.published(out[i].State)
	}
	return e.flush(ctx, false)
}

// desired is what receivers should know of s now. While it flaps, they
// are told once that it flaps, and then nothing until it settles.
func (e *Engine) desired(s *series) published {
	firing := s.A.State == alert.Firing
	if s.Flap.On && s.Pub.Sent {
		d := s.Pub
		d.Flapping = true
		return d
	}
	if !firing && !s.Pub.Firing && !s.Pub.Flapping {
		return s.Pub // never told it fires, or already told it resolved
	}
	return published{Firing: firing, Severity: s.A.Severity, Flapping: s.Flap.On, Acked: s.A.Ack != nil,
		Muted: s.A.Muted(), Sent: true}
}

// view is the alert as published in state d.
func (e *Engine) view(s *series, d published) alert.Alert {
	a := s.A
	a.Seq++
	a.Severity, a.Flapping = d.Severity, d.Flapping
	a.State = alert.Resolved
	if d.Firing {
		a.State, a.EndsAt = alert.Firing, time.Time{}
	} else if a.EndsAt.IsZero() {
		a.EndsAt = a.Since
	}
	a.Labels = e.labels(s, d.Severity)
	a.Annotations = e.annotations(s, d.Severity)
	return a
}

// labels are the series' labels with the severity and level of d.
func (e *Engine) labels(s *series, sev alert.Severity) map[string]string {
	out := make(map[string]string, len(s.A.Labels)+2)
	for k, v := range s.A.Labels {
		out[k] = v
	}
	out["severity"] = sev.String()
	out["level"] = strconv.Itoa(sev.Level())
	return out
}

// mute sets which silences and which causes keep s quiet: an offline or
// unresponsive gateway mutes its devices' alerts, a dead bus its devices'
// silence, a more severe alert of the same hazard (alertname) on the same
// device or site the lesser ones, and an observed alert on a device's
// metric the forecast of it.
func (e *Engine) mute(s *series, now time.Time) {
	s.A.Silenced = s.A.Silenced[:0]
	for _, si := range e.silences {
		if si.Active(now) && si.Matches(s.A.Labels) {
			s.A.Silenced = append(s.A.Silenced, si.ID)
		}
	}
	if len(s.A.Silenced) == 0 {
		s.A.Silenced = nil
	}
	was := s.A.InhibitedBy
	s.A.InhibitedBy = ""
	switch {
	case !e.fieldChecked && e.o.Registry != nil:
		// After a start, which gateway or bus is down is known once the
		// field has been checked: until then keep a cause's muting as saved.
		if by := e.byFP[was]; by != nil && (by.rule == e.gwRule || by.rule == e.busRule) {
			s.A.InhibitedBy = was
		}
	case s.rule != e.gwRule && s.rule != e.intakeRule:
		s.A.InhibitedBy = e.muting[s.key.gw]
		if s.A.InhibitedBy == "" && s.rule == e.devRule && s.bus != "" {
			s.A.InhibitedBy = e.busMute[busKey{s.key.gw, s.bus}]
		}
	}
	if s.A.InhibitedBy == "" {
		s.A.InhibitedBy = e.outranked(s)
	}
}

// outranked is the fingerprint of the alert that makes s redundant: a
// firing alert of the same hazard at the same place that is more severe
// (or as severe and older), or, for a forecast, a firing alert observed on
// the same device and metric.
func (e *Engine) outranked(s *series) string {
	if s.A.State != alert.Firing {
		return ""
	}
	if s.rule.Kind == rules.Forecast {
		// What is forecast has come: an alert observed on the same device
		// and metric, or of the same hazard (alertname) on the device or
		// its site (a site-wide frost alert), speaks instead.
		name, site := s.A.Labels["alertname"], s.A.Labels["site"]
		groups := [][]*series{e.near[skey{0, s.key.gw, s.key.dev, s.key.met}],
			e.peers[peerKey{name, s.key.gw, site, s.key.dev}], e.peers[peerKey{name, s.key.gw, site, ""}]}
		for _, g := range groups {
			for _, n := range g {
				if n != s && n.rule.Kind != rules.Forecast && n.A.State == alert.Firing {
					return n.A.Fingerprint
				}
			}
		}
		return ""
	}
	for _, pk := range e.peerKeys(s) {
		for _, p := range e.peers[pk] {
			if p != s && p.A.State == alert.Firing && outranks(&p.A, &s.A) {
				return p.A.Fingerprint
			}
		}
	}
	return ""
}

// outranks reports whether a speaks for the hazard before b: more severe,
// or as severe and older (fingerprints break ties).
func outranks(a, b *alert.Alert) bool {
	return a.Severity > b.Severity || (a.Severity == b.Severity && (a.StartsAt.Before(b.StartsAt) ||
		(a.StartsAt.Equal(b.StartsAt) && a.Fingerprint < b.Fingerprint)))
}

// outranking lists the firing alerts s speaks for ("rule severity"), for
// its explanation.
func (e *Engine) outranking(s *series) []string {
	var out []string
	seen := map[*series]bool{s: true}
	for _, pk := range e.peerKeys(s) {
		for _, p := range e.peers[pk] {
			if !seen[p] && p.A.State == alert.Firing && s.A.State == alert.Firing && outranks(&s.A, &p.A) {
				seen[p] = true
				out = append(out, p.rule.ID+" "+p.A.Severity.String())
			}
		}
	}
	return out
}
