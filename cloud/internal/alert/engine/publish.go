package engine

import (
	"context"
	"strconv"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
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

func (e *Engine) annotations(s *series, sev alert.Severity) map[string]string {
	c := s.rule
	out := map[string]string{}
	for k, v := range c.Annotations {
		out[k] = v
	}
	out["value"] = formatValue(s.A.Value)
	out["standard"] = c.Standard
	out["severity_cn"] = sev.Chinese()
	if out["summary"] == "" {
		out["summary"] = c.Name
		if out["summary"] == "" {
			out["summary"] = c.ID
		}
	}
	for _, l := range s.Levels {
		if l.Severity == sev && l.Set != nil {
			out["threshold"] = l.Op + " " + formatValue(*l.Set)
			if l.Class != "" {
				out["threshold"] = "class " + l.Class + " or worse"
			}
		}
	}
	out["threshold_source"] = s.Source
	if c.table != nil {
		idx := int(s.A.Value)
		if idx >= 0 && idx < len(c.table.Classes) {
			out["class"] = c.table.Classes[idx]
		}
	}
	if link := e.linkFor(s.A.Fingerprint); link != "" {
		out["dashboard_url"] = link
	}
	return out
}

// mute sets which silences and which offline gateway keep s quiet.
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
	s.A.InhibitedBy = ""
	if s.rule != e.gwRule {
		s.A.InhibitedBy = e.muting[s.key.gw]
	}
}
