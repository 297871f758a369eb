package notify

import "time"

// postableAlert is an element of Alertmanager's POST /api/v2/alerts body.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       *time.Time        `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// postableJSON is the body pushing alerts: firing ones without endsAt (so
// Alertmanager keeps them until resolve_timeout after the last push),
// resolved ones with their end.
func postableJSON(alerts []*Alert, now time.Time) []byte {
	out := make([]postableAlert, 0, len(alerts))
	for _, a := range alerts {
		pa := postableAlert{Labels: map[string]string{}, Annotations: map[string]string{}, StartsAt: a.StartsAt.UTC(),
			GeneratorURL: a.GeneratorURL}
		for k, v := range a.Labels {
			if v != "" && labelNameRE.MatchString(k) {
				pa.Labels[k] = v
			}
		}
		for k, v := range a.Annotations {
			if labelNameRE.MatchString(k) {
				pa.Annotations[k] = v
			}
		}
		if a.Status == StatusResolved {
			end := a.EndsAt.UTC()
			if end.IsZero() {
				end = now.UTC()
			}
			pa.EndsAt = &end
		}
		out = append(out, pa)
	}
	return []byte(mustJSON(out))
}

// resend queues one push of every active (firing, unmuted) alert an
// alertmanager_api receiver was sent, every Resend, so Alertmanager does not
// resolve them by timeout. It skips the turn while the receiver's queue is
// not empty: the queued pushes refresh Alertmanager when they go out.
// n.mu is held.
func (n *Notifier) resend(rc *receiver, now time.Time, b *batch) {
	rc.nextResend = now.Add(orDefault(rc.cfg.AlertmanagerAPI.Resend, defaultResend))
	if rc.status(now).Queue > 0 {
		return
	}
	var active []*Alert
	for fp, p := range rc.pushed {
		if a := n.alerts[fp]; a != nil && p.Status == StatusFiring && a.Status == StatusFiring && !a.Muted {
			active = append(active, &a.Alert)
		}
	}
	if len(active) == 0 {
		return
	}
	sortAlerts(active)
	key := "resend:" + rc.name + ":" + now.UTC().Format(time.RFC3339Nano)
	b.add(rc, &message{key: key, payload: postableJSON(active, now), causedAt: now, createdAt: now})
}
