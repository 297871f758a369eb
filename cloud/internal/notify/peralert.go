package notify

import "time"

// pushed is what a per-alert receiver (mqtt, alertmanager_api) was last
// sent about an alert.
type pushed struct {
	Seq          uint64
	Status       string
	Acknowledged bool
}

// onChange queues a per-alert receiver's messages for an alert's change:
// at once, without grouping. A muted alert is not sent; if it was sent
// firing, its resolution still is. n.mu is held.
func (rc *receiver) onChange(n *Notifier, cur *alertState, now time.Time, b *batch) {
	fp := cur.Fingerprint
	p := rc.pushed[fp]
	a := &cur.Alert
	switch {
	case a.Status == StatusFiring && !a.Muted:
		if p == nil || p.Seq != a.Seq || p.Status != StatusFiring {
			rc.queueChange(n, a, cur.updated, now, b)
			p = &pushed{Seq: a.Seq, Status: StatusFiring, Acknowledged: a.Acknowledged}
			rc.pushed[fp] = p
			b.pushed = append(b.pushed, pushedWrite{rc, fp, p})
		} else if p.Acknowledged != a.Acknowledged {
			if rc.kind == KindMQTT {
				b.add(rc, rc.mqttState(a, cur.updated, now, true))
			}
			p.Acknowledged = a.Acknowledged
			b.pushed = append(b.pushed, pushedWrite{rc, fp, p})
		}
	case a.Status == StatusFiring:
		// Muted: nothing now; an alertmanager_api receiver stops re-sending it.
	default:
		if p != nil && p.Status == StatusFiring {
			rc.queueChange(n, a, cur.updated, now, b)
			delete(rc.pushed, fp)
			b.pushed = append(b.pushed, pushedWrite{rc, fp, nil})
		}
	}
}

func (rc *receiver) queueChange(n *Notifier, a *Alert, caused, now time.Time, b *batch) {
	switch rc.kind {
	case KindMQTT:
		key := alertKey(a)
		b.add(rc, &message{key: key, topic: eventTopic(rc.prefix(), a), payload: eventJSON(a, key, false),
			causedAt: caused, createdAt: now})
		b.add(rc, rc.mqttState(a, caused, now, false))
	case KindAlertmanagerAPI:
		b.add(rc, &message{key: alertKey(a), payload: postableJSON([]*Alert{a}, now), causedAt: caused, createdAt: now})
	}
}
