package notify

import "time"

// WebhookMessage is Alertmanager's webhook payload, version 4 (its
// notify/webhook.Message with the embedded template.Data), field for field.
type WebhookMessage struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []WebhookAlert    `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
}

// WebhookAlert is one alert of a WebhookMessage (Alertmanager's
// template.Alert). EndsAt is the zero time, 0001-01-01T00:00:00Z, while
// the alert fires.
type WebhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// amWebhookMessage builds the v4 message of a group check; alerts are the
// firing then the resolved ones, in order.
func amWebhookMessage(rc *receiver, externalURL string, g *group, alerts []*Alert) []byte {
	m := WebhookMessage{
		Receiver:    rc.name,
		Status:      StatusResolved,
		GroupLabels: cloneMap(g.labels),
		ExternalURL: externalURL,
		Version:     "4",
		GroupKey:    g.key,
	}
	for _, a := range alerts {
		if a.Status == StatusFiring {
			m.Status = StatusFiring
		}
	}
	m.CommonLabels = common(alerts, func(a *Alert) map[string]string { return a.Labels })
	m.CommonAnnotations = common(alerts, func(a *Alert) map[string]string { return a.Annotations })
	if max := rc.cfg.AlertmanagerWebhook.MaxAlerts; max > 0 && len(alerts) > max {
		m.TruncatedAlerts = uint64(len(alerts) - max)
		alerts = alerts[:max]
	}
	m.Alerts = make([]WebhookAlert, 0, len(alerts))
	for _, a := range alerts {
		wa := WebhookAlert{Status: a.Status, Labels: cloneMap(a.Labels), Annotations: cloneMap(a.Annotations),
			StartsAt: a.StartsAt.UTC(), GeneratorURL: a.GeneratorURL, Fingerprint: a.Fingerprint}
		if a.Status == StatusResolved {
			wa.EndsAt = a.EndsAt.UTC()
		}
		m.Alerts = append(m.Alerts, wa)
	}
	return []byte(mustJSON(m))
}

// common returns the pairs every alert has, as Alertmanager's commonLabels.
func common(alerts []*Alert, of func(*Alert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(alerts) == 0 {
		return out
	}
	for k, v := range of(alerts[0]) {
		out[k] = v
	}
	for _, a := range alerts[1:] {
		m := of(a)
		for k, v := range out {
			if w, ok := m[k]; !ok || w != v {
				delete(out, k)
			}
		}
	}
	return out
}
