package notify

import (
	"context"
	"errors"
	"sync"
	"time"
)

// maxIdle bounds the scheduler's sleep, so it notices a changed clock.
const maxIdle = time.Second

// Retention of finished outbox rows, resolved alerts and forgotten groups.
const (
	keepDone       = 1000
	keepDoneFor    = 7 * 24 * time.Hour
	keepResolved   = 7 * 24 * time.Hour
	keepForgotten  = 30 * 24 * time.Hour
	pruneEvery     = 10 * time.Minute
	rescheduleWait = time.Second
)

// Run groups, schedules and delivers until ctx is done (or Close), then
// returns nil. Call it once.
func (n *Notifier) Run(ctx context.Context) error {
	n.runMu.Lock()
	if n.closed || n.cancel != nil {
		n.runMu.Unlock()
		return errors.New("notifier closed or already running")
	}
	ctx, cancel := context.WithCancel(ctx)
	n.cancel = cancel
	n.running.Add(1)
	n.runMu.Unlock()
	defer n.running.Done()
	defer cancel()

	var wg sync.WaitGroup
	for _, rc := range n.receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.deliver(ctx, rc)
		}()
	}
	for ctx.Err() == nil {
		next := n.tick(ctx)
		d := min(max(next.Sub(n.now()), 0), maxIdle)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
		case <-n.wakeSched:
		case <-t.C:
		}
		t.Stop()
	}
	wg.Wait()
	return nil
}

// tick runs the group checks and resends that are due, in one transaction,
// prunes when it is time, and returns when the next is due.
func (n *Notifier) tick(ctx context.Context) time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	next := now.Add(maxIdle)
	var b batch
	for _, rc := range n.receivers {
		switch {
		case rc.cfg.grouped():
			for _, g := range rc.groups {
				if !g.active {
					continue
				}
				if !g.nextCheck.After(now) {
					n.check(rc, g, now, &b)
				}
				if g.active && g.nextCheck.Before(next) {
					next = g.nextCheck
				}
			}
		case rc.kind == KindAlertmanagerAPI:
			if !rc.nextResend.After(now) {
				n.resend(rc, now, &b)
			}
			if rc.nextResend.Before(next) {
				next = rc.nextResend
			}
		}
	}
	if len(b.msgs) > 0 || len(b.groups) > 0 {
		if err := n.commit(ctx, &b); err != nil {
			if ctx.Err() == nil {
				n.log.Error("cannot schedule notifications; retrying", "err", err)
			}
			return now.Add(rescheduleWait)
		}
	}
	if now.Sub(n.lastPrune) >= pruneEvery {
		n.lastPrune = now
		if err := n.prune(ctx, now); err != nil && ctx.Err() == nil {
			n.log.Error("cannot prune notify database", "err", err)
		}
	}
	return next
}

// commit writes b in one transaction; on failure memory is reloaded.
func (n *Notifier) commit(ctx context.Context, b *batch) error {
	err := func() error {
		tx, err := n.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := b.write(ctx, tx, n); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil {
		if lerr := n.reloadLocked(context.WithoutCancel(ctx)); lerr != nil {
			n.log.Error("cannot reload notifier state", "err", lerr)
		}
		return err
	}
	b.applied(n)
	return nil
}

// prune deletes finished outbox rows beyond the newest keepDone per
// receiver or older than keepDoneFor, resolved alerts older than
// keepResolved and groups forgotten longer than keepForgotten. n.mu is held.
func (n *Notifier) prune(ctx context.Context, now time.Time) error {
	for _, rc := range n.receivers {
		if _, err := n.db.ExecContext(ctx, `DELETE FROM notify_outbox WHERE receiver = ? AND state != 0 AND (done_at < ?
			OR seq <= (SELECT seq FROM notify_outbox WHERE receiver = ? AND state != 0 ORDER BY seq DESC LIMIT 1 OFFSET ?))`,
			rc.name, nanos(now.Add(-keepDoneFor)), rc.name, keepDone); err != nil {
			return err
		}
		for key, g := range rc.groups {
			if !g.active && now.Sub(maxTime(g.created, g.lastSent)) > keepForgotten {
				if _, err := n.db.ExecContext(ctx, `DELETE FROM notify_groups WHERE receiver = ? AND group_key = ?`,
					rc.name, key); err != nil {
					return err
				}
				delete(rc.groups, key)
			}
		}
	}
	for fp, a := range n.alerts {
		if a.Status == StatusResolved && now.Sub(a.updated) > keepResolved {
			if _, err := n.db.ExecContext(ctx, `DELETE FROM notify_alerts WHERE fingerprint = ?`, fp); err != nil {
				return err
			}
			delete(n.alerts, fp)
		}
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
