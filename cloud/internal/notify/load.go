package notify

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
)

// load reads the database into memory: alerts, groups (with their members
// recomputed from the alerts), pushed records and each receiver's queue.
func (n *Notifier) load(ctx context.Context) error {
	n.alerts = map[string]*alertState{}
	if err := n.loadAlerts(ctx); err != nil {
		return fmt.Errorf("cannot load alerts: %w", err)
	}
	for _, rc := range n.receivers {
		rc.groups = map[string]*group{}
		rc.pushed = map[string]*pushed{}
		if err := n.loadQueue(ctx, rc); err != nil {
			return fmt.Errorf("cannot load outbox of %s: %w", rc.name, err)
		}
	}
	if err := n.loadGroups(ctx); err != nil {
		return fmt.Errorf("cannot load groups: %w", err)
	}
	if err := n.loadPushed(ctx); err != nil {
		return fmt.Errorf("cannot load pushed alerts: %w", err)
	}
	now := n.now()
	for _, a := range n.alerts {
		for _, rc := range n.receivers {
			if !rc.cfg.grouped() {
				continue
			}
			key, labels := rc.groupOf(n.cfg, a.Labels)
			g := rc.groups[key]
			switch {
			case g != nil && g.active:
				g.members[a.Fingerprint] = struct{}{}
			case a.Status == StatusFiring:
				// Defensive: Update creates the group of every firing alert.
				g = rc.activate(g, key, labels, now, n.cfg)
				g.members[a.Fingerprint] = struct{}{}
			}
		}
	}
	return nil
}

// reloadLocked reloads after a failed transaction; n.mu is held.
func (n *Notifier) reloadLocked(ctx context.Context) error { return n.load(ctx) }

func (n *Notifier) loadAlerts(ctx context.Context) error {
	rows, err := n.db.QueryContext(ctx, `SELECT fingerprint, labels, annotations, status, starts_at, ends_at,
		generator_url, seq, acknowledged, muted, updated_at FROM notify_alerts`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a alertState
		var labels, annotations string
		var startsAt, endsAt, updated, seq int64
		var ack, muted int
		if err := rows.Scan(&a.Fingerprint, &labels, &annotations, &a.Status, &startsAt, &endsAt, &a.GeneratorURL,
			&seq, &ack, &muted, &updated); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(labels), &a.Labels); err != nil {
			return fmt.Errorf("alert %s labels: %w", a.Fingerprint, err)
		}
		if err := json.Unmarshal([]byte(annotations), &a.Annotations); err != nil {
			return fmt.Errorf("alert %s annotations: %w", a.Fingerprint, err)
		}
		a.StartsAt, a.EndsAt, a.updated = fromNanos(startsAt), fromNanos(endsAt), fromNanos(updated)
		a.Seq, a.Acknowledged, a.Muted = uint64(seq), ack != 0, muted != 0
		n.alerts[a.Fingerprint] = &a
	}
	return rows.Err()
}

func (n *Notifier) loadQueue(ctx context.Context, rc *receiver) error {
	var maxSeq, pending sql.NullInt64
	var oldest sql.NullInt64
	err := n.db.QueryRowContext(ctx, `SELECT (SELECT max(seq) FROM notify_outbox WHERE receiver = ?),
		count(*), min(created_at) FROM notify_outbox WHERE receiver = ? AND state = 0`, rc.name, rc.name).
		Scan(&maxSeq, &pending, &oldest)
	if err != nil {
		return err
	}
	rc.nextSeq = uint64(maxSeq.Int64)
	rc.setQueue(int(pending.Int64), fromNanos(oldest.Int64))
	return nil
}

func (n *Notifier) loadGroups(ctx context.Context) error {
	byName := map[string]*receiver{}
	for _, rc := range n.receivers {
		byName[rc.name] = rc
	}
	rows, err := n.db.QueryContext(ctx, `SELECT receiver, group_key, labels, active, created_at, next_check, last_sent,
		has_entry, notify_seq, firing FROM notify_groups`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name, labels, firing string
		var g group
		var active, hasEntry int
		var created, next, last, seq int64
		if err := rows.Scan(&name, &g.key, &labels, &active, &created, &next, &last, &hasEntry, &seq,
			&firing); err != nil {
			return err
		}
		rc := byName[name]
		if rc == nil || !rc.cfg.grouped() {
			continue // a receiver no longer configured
		}
		if err := json.Unmarshal([]byte(labels), &g.labels); err != nil {
			return fmt.Errorf("group %s labels: %w", g.key, err)
		}
		if err := json.Unmarshal([]byte(firing), &g.firing); err != nil {
			return fmt.Errorf("group %s firing: %w", g.key, err)
		}
		if g.firing == nil {
			g.firing = map[string]uint64{}
		}
		g.active, g.hasEntry = active != 0, hasEntry != 0
		g.created, g.nextCheck, g.lastSent, g.notifySeq = fromNanos(created), fromNanos(next), fromNanos(last), uint64(seq)
		g.members = map[string]struct{}{}
		rc.groups[g.key] = &g
	}
	return rows.Err()
}

func (n *Notifier) loadPushed(ctx context.Context) error {
	byName := map[string]*receiver{}
	for _, rc := range n.receivers {
		byName[rc.name] = rc
	}
	rows, err := n.db.QueryContext(ctx, `SELECT receiver, fingerprint, seq, status, acknowledged FROM notify_pushed`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name, fp string
		var p pushed
		var seq int64
		var ack int
		if err := rows.Scan(&name, &fp, &seq, &p.Status, &ack); err != nil {
			return err
		}
		if rc := byName[name]; rc != nil && !rc.cfg.grouped() {
			p.Seq, p.Acknowledged = uint64(seq), ack != 0
			rc.pushed[fp] = &p
		}
	}
	return rows.Err()
}
