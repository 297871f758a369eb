package notify

import (
	"sort"
	"strconv"
	"time"
)

// group is one aggregation group of a grouped receiver, with Alertmanager's
// semantics: a new group waits GroupWait, then is checked every
// GroupInterval; a check sends when firing alerts are new or changed, when
// alerts it notified firing resolved, or when the repeat interval of its
// highest unacknowledged firing severity has passed since the last message.
type group struct {
	key       string
	labels    map[string]string
	active    bool // false: forgotten, kept only for notifySeq
	created   time.Time
	nextCheck time.Time
	lastSent  time.Time
	hasEntry  bool              // a message was sent since the group started
	notifySeq uint64            // per-group message sequence: part of the idempotency key
	firing    map[string]uint64 // fingerprint → seq last notified firing (muted ones kept)
	members   map[string]struct{}
}

// activate returns the group with key, (re)started at now if it was new or
// forgotten. n.mu is held.
func (rc *receiver) activate(g *group, key string, labels map[string]string, now time.Time, cfg Config) *group {
	if g == nil {
		g = &group{key: key, labels: labels}
		rc.groups[key] = g
	}
	if !g.active {
		g.active, g.hasEntry = true, false
		g.created, g.nextCheck, g.lastSent = now, now.Add(cfg.GroupWait), time.Time{}
		g.firing = map[string]uint64{}
	}
	if g.members == nil {
		g.members = map[string]struct{}{}
	}
	return g
}

// regroup moves an alert into its group after a change. An alert whose
// group labels changed (an escalation with severity in group_by) leaves its
// old group silently: its resolution is reported by the group it is in
// when it resolves, so a receiver never sees an escalated alert "resolved".
// n.mu is held.
func (n *Notifier) regroup(rc *receiver, old, cur *alertState, now time.Time, b *batch) {
	key, labels := rc.groupOf(n.cfg, cur.Labels)
	if old != nil {
		if oldKey, _ := rc.groupOf(n.cfg, old.Labels); oldKey != key {
			if og := rc.groups[oldKey]; og != nil && og.members != nil {
				delete(og.members, cur.Fingerprint)
				delete(og.firing, cur.Fingerprint)
				b.touch(rc, og)
			}
		}
	}
	g := rc.groups[key]
	if g == nil || !g.active {
		if cur.Status != StatusFiring {
			return // nothing the receiver needs to hear about
		}
		g = rc.activate(g, key, labels, now, n.cfg)
		b.touch(rc, g)
	}
	g.members[cur.Fingerprint] = struct{}{}
}

// flushPlan is what a group check decided to send.
type flushPlan struct {
	firing   []*Alert // unmuted firing alerts, all of them
	changed  []*Alert // of firing: new or changed since the last message
	resolved []*Alert // notified firing before, now resolved (if sent)
	repeat   bool     // sent only because the repeat interval passed
	caused   time.Time
}

// check runs one group check at now, adding its messages to b. n.mu is held.
func (n *Notifier) check(rc *receiver, g *group, now time.Time, b *batch) {
	p := flushPlan{caused: now}
	newFiring := map[string]uint64{}
	for fp := range g.members {
		a := n.alerts[fp]
		if a == nil {
			delete(g.members, fp)
			continue
		}
		last, notified := g.firing[fp]
		switch {
		case a.Status == StatusFiring && !a.Muted:
			p.firing = append(p.firing, &a.Alert)
			newFiring[fp] = a.Seq
			if !notified || last != a.Seq {
				p.changed = append(p.changed, &a.Alert)
				p.caused = minTime(p.caused, a.updated)
			}
		case a.Status == StatusFiring: // muted: keep what was sent, to report its resolution
			if notified {
				newFiring[fp] = last
			}
		default:
			if notified && rc.cfg.sendResolved() {
				p.resolved = append(p.resolved, &a.Alert)
				p.caused = minTime(p.caused, a.updated)
			}
			delete(g.members, fp)
		}
	}
	need := false
	switch {
	case !g.hasEntry:
		need = len(p.firing) > 0
	case len(p.changed) > 0 || len(p.resolved) > 0:
		need = true
	default:
		top := -1
		for _, a := range p.firing {
			if !a.Acknowledged {
				top = max(top, severityRank(a.Labels["severity"]))
			}
		}
		if top >= 0 && !now.Before(g.lastSent.Add(n.cfg.RepeatInterval.For(severities[top]))) {
			need, p.repeat = true, true
		}
	}
	g.firing = newFiring
	g.nextCheck = now.Add(n.cfg.GroupInterval)
	if need {
		sortAlerts(p.firing)
		sortAlerts(p.changed)
		sortAlerts(p.resolved)
		if n.buildMessages(rc, g, &p, now, b) {
			g.hasEntry, g.lastSent = true, now
		}
	}
	if len(g.members) == 0 {
		g.active, g.hasEntry, g.firing = false, false, map[string]uint64{}
	}
	b.touch(rc, g)
}

// buildMessages adds the messages of a group check; it reports whether any
// was added.
func (n *Notifier) buildMessages(rc *receiver, g *group, p *flushPlan, now time.Time, b *batch) bool {
	switch rc.kind {
	case KindAlertmanagerWebhook:
		alerts := append(append([]*Alert{}, p.firing...), p.resolved...)
		if len(alerts) == 0 {
			return false
		}
		g.notifySeq++
		key := g.key + ":" + strconv.FormatUint(g.notifySeq, 10)
		body := amWebhookMessage(rc, n.cfg.ExternalURL, g, alerts)
		b.add(rc, &message{key: key, payload: body, causedAt: p.caused, createdAt: now})
		return true
	case KindWebhook:
		var out []*message
		if p.repeat {
			for _, a := range p.firing {
				if !a.Acknowledged {
					key := alertKey(a) + ":r" + strconv.FormatUint(g.notifySeq+1, 10)
					out = append(out, &message{key: key, payload: eventJSON(a, key, true)})
				}
			}
		} else {
			for _, a := range append(append([]*Alert{}, p.changed...), p.resolved...) {
				out = append(out, &message{key: alertKey(a), payload: eventJSON(a, alertKey(a), false)})
			}
		}
		if len(out) == 0 {
			return false
		}
		g.notifySeq++
		for _, m := range out {
			m.causedAt, m.createdAt = p.caused, now
			b.add(rc, m)
		}
		return true
	}
	return false
}

// sortAlerts orders by start, then fingerprint.
func sortAlerts(as []*Alert) {
	sort.Slice(as, func(i, j int) bool {
		if !as[i].StartsAt.Equal(as[j].StartsAt) {
			return as[i].StartsAt.Before(as[j].StartsAt)
		}
		return as[i].Fingerprint < as[j].Fingerprint
	})
}

func minTime(a, b time.Time) time.Time {
	if b.IsZero() || a.Before(b) {
		return a
	}
	return b
}

// alertKey is a per-alert message's idempotency key.
func alertKey(a *Alert) string {
	return a.Fingerprint + ":" + a.Status + ":" + a.Labels["level"] + ":" + strconv.FormatUint(a.Seq, 10)
}
