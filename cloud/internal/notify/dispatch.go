package notify

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"time"
)

// deliver sends rc's outbox strictly in order until ctx is done: the head is
// retried with backoff until it is delivered or permanently refused.
func (n *Notifier) deliver(ctx context.Context, rc *receiver) {
	fails := 0
	for ctx.Err() == nil {
		m, err := n.head(ctx, rc)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fails++
			n.log.Error("cannot read outbox", "receiver", rc.name, "err", err)
			sleep(ctx, backoff(n.cfg.Retry, fails))
			continue
		}
		if m == nil {
			select {
			case <-rc.wake:
			case <-ctx.Done():
				return
			}
			continue
		}
		err = rc.send(ctx, m)
		now := n.now()
		switch {
		case err == nil:
			if !n.finish(ctx, rc, m, 1, "", now) {
				continue
			}
			fails = 0
			n.m.sent.WithLabelValues(rc.name).Inc()
			n.m.latency.Observe(max(0, now.Sub(m.causedAt)).Seconds())
		case ctx.Err() != nil:
			return
		case isPermanent(err):
			if !n.finish(ctx, rc, m, 2, err.Error(), now) {
				continue
			}
			fails = 0
			n.m.dropped.WithLabelValues(rc.name, dropReason(err)).Inc()
			rc.failed(err, now)
			n.log.Warn("notification refused; dropped", "receiver", rc.name, "key", m.key, "err", err)
		default:
			fails++
			n.m.failed.WithLabelValues(rc.name).Inc()
			rc.failed(err, now)
			d := backoff(n.cfg.Retry, fails)
			if _, uerr := n.db.ExecContext(ctx, `UPDATE notify_outbox SET attempts = attempts + 1, next_attempt = ?,
				last_error = ? WHERE id = ?`, nanos(now.Add(d)), err.Error(), m.id); uerr != nil && ctx.Err() == nil {
				n.log.Error("cannot record attempt", "receiver", rc.name, "err", uerr)
			}
			if ok, held := n.throttle.Allow("deliver/" + rc.name); ok {
				n.log.Warn("delivery failed; retrying", "receiver", rc.name, "key", m.key, "attempt", m.attempts+1,
					"retry_in", d, "err", err, "held_back", held)
			}
			sleep(ctx, d)
		}
	}
}

// head returns rc's oldest undelivered message, or nil.
func (n *Notifier) head(ctx context.Context, rc *receiver) (*message, error) {
	m := &message{receiver: rc.name}
	enq := rc.enqueuedCount()
	var seq, caused, created int64
	var retained int
	err := n.db.QueryRowContext(ctx, `SELECT id, seq, key, topic, retained, payload, caused_at, created_at, attempts
		FROM notify_outbox WHERE receiver = ? AND state = 0 ORDER BY seq LIMIT 1`, rc.name).
		Scan(&m.id, &seq, &m.key, &m.topic, &retained, &m.payload, &caused, &created, &m.attempts)
	if errors.Is(err, sql.ErrNoRows) {
		rc.emptied(enq)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m.seq, m.retained, m.causedAt, m.createdAt = uint64(seq), retained != 0, fromNanos(caused), fromNanos(created)
	rc.statMu.Lock()
	rc.oldest = m.createdAt
	rc.statMu.Unlock()
	return m, nil
}

// finish marks the head delivered (1) or failed (2); false if it could not.
func (n *Notifier) finish(ctx context.Context, rc *receiver, m *message, state int, lastErr string, now time.Time) bool {
	_, err := n.db.ExecContext(ctx, `UPDATE notify_outbox SET state = ?, done_at = ?, last_error = ?,
		attempts = attempts + 1 WHERE id = ?`, state, nanos(now), lastErr, m.id)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Error("cannot mark notification done; it will be sent again", "receiver", rc.name, "key", m.key, "err", err)
			sleep(ctx, n.cfg.Retry.Initial)
		}
		return false
	}
	rc.done(state == 1, time.Time{})
	return true
}

// backoff is the delay after the fails-th failure in a row: Initial
// doubling up to Max, with jitter in [d/2, d].
func backoff(r Retry, fails int) time.Duration {
	d := max(r.Initial, time.Millisecond)
	for i := 1; i < fails && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, max(r.Max, r.Initial))
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
