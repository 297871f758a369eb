package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// receiver is one configured destination: its sender, its in-memory
// grouping or pushed state (guarded by Notifier.mu) and its queue figures
// (guarded by its own mutex, read by Status and the metrics).
type receiver struct {
	name string
	kind string
	cfg  Receiver
	send func(ctx context.Context, m *message) error
	wake chan struct{}

	// Guarded by Notifier.mu.
	groups     map[string]*group  // grouped receivers: by group key
	pushed     map[string]*pushed // per-alert receivers: by fingerprint
	nextSeq    uint64             // last outbox seq used
	nextResend time.Time          // alertmanager_api

	statMu    sync.Mutex
	enqueued  uint64 // batches queued: tells head an empty result is stale
	queue     int
	oldest    time.Time // created_at of the head, zero when empty
	sent      uint64
	dropped   uint64
	lastErr   string
	lastErrAt time.Time
}

// message is one outbox row.
type message struct {
	id        int64
	receiver  string
	seq       uint64
	key       string
	topic     string
	retained  bool
	payload   []byte
	causedAt  time.Time
	createdAt time.Time
	attempts  int
}

// permanentError is a refusal that retrying cannot fix (an HTTP 4xx other
// than 408 and 429): the message is dropped and counted.
type permanentError struct {
	reason string // dropRejected, dropInvalid
	err    error
}

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func isPermanent(err error) bool {
	var pe *permanentError
	return errors.As(err, &pe)
}

func dropReason(err error) string {
	var pe *permanentError
	if errors.As(err, &pe) && pe.reason != "" {
		return pe.reason
	}
	return dropRejected
}

func newReceiver(n *Notifier, i int, rc Receiver, pub Publisher) (*receiver, error) {
	r := &receiver{name: rc.Name, kind: rc.Kind(), cfg: rc, wake: make(chan struct{}, 1)}
	path := func(parts ...any) string { return yamlconf.Join(append([]any{"receivers", i}, parts...)...) }
	switch {
	case rc.AlertmanagerWebhook != nil:
		s := &httpSender{client: &http.Client{Timeout: orDefault(rc.AlertmanagerWebhook.Timeout, defaultTimeout)},
			url: rc.AlertmanagerWebhook.URL, now: n.now}
		r.send = s.send
	case rc.AlertmanagerAPI != nil:
		s := &httpSender{client: &http.Client{Timeout: orDefault(rc.AlertmanagerAPI.Timeout, defaultTimeout)},
			url: strings.TrimSuffix(rc.AlertmanagerAPI.URL, "/") + "/api/v2/alerts", now: n.now}
		r.send = s.send
	case rc.Webhook != nil:
		secret, loose, err := readSecret(rc.Webhook.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("%s: cannot read %s: %w", path("webhook", "secret_file"), rc.Webhook.SecretFile, err)
		}
		if loose != nil {
			loose.Field = "alerting.notify." + path("webhook", "secret_file")
			loose.Warn(n.log)
		}
		s := &httpSender{client: &http.Client{Timeout: orDefault(rc.Webhook.Timeout, defaultTimeout)},
			url: rc.Webhook.URL, secret: secret, now: n.now}
		r.send = s.send
	case rc.MQTT != nil:
		if pub == nil {
			return nil, fmt.Errorf("%s: an MQTT receiver needs a Publisher", path("mqtt"))
		}
		r.send = func(ctx context.Context, m *message) error { return pub.Publish(ctx, m.topic, m.retained, m.payload) }
	default:
		return nil, fmt.Errorf("%s: needs exactly one kind", path())
	}
	return r, nil
}

// groupOf returns the key and labels of the group that labels belong to.
// The key follows Alertmanager's "route:labels" form, with the receiver as
// the route so keys are unique across receivers.
func (rc *receiver) groupOf(cfg Config, labels map[string]string) (string, map[string]string) {
	gl := map[string]string{}
	if len(cfg.GroupBy) == 1 && cfg.GroupBy[0] == "..." {
		for k, v := range labels {
			if v != "" {
				gl[k] = v
			}
		}
	} else {
		for _, k := range cfg.GroupBy {
			if v := labels[k]; v != "" {
				gl[k] = v
			}
		}
	}
	return `{}/{receiver=` + strconv.Quote(rc.name) + `}:` + formatLabels(gl), gl
}

// formatLabels writes labels as Prometheus does: {a="1", b="2"}.
func formatLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// queued records k new messages; created is the first one's creation.
func (rc *receiver) queued(k int, created time.Time) {
	rc.statMu.Lock()
	if rc.queue == 0 {
		rc.oldest = created
	}
	rc.queue += k
	rc.enqueued++
	rc.statMu.Unlock()
	select {
	case rc.wake <- struct{}{}:
	default:
	}
}

// emptied records an empty queue unless messages were queued since the
// caller read enqueued (before it looked).
func (rc *receiver) emptied(enqueued uint64) {
	rc.statMu.Lock()
	if rc.enqueued == enqueued {
		rc.queue, rc.oldest = 0, time.Time{}
	}
	rc.statMu.Unlock()
}

func (rc *receiver) enqueuedCount() uint64 {
	rc.statMu.Lock()
	defer rc.statMu.Unlock()
	return rc.enqueued
}

func (rc *receiver) setQueue(k int, oldest time.Time) {
	rc.statMu.Lock()
	rc.queue, rc.oldest = k, oldest
	rc.statMu.Unlock()
}

// done records the head finished (delivered or dropped); next is the new
// head's creation time, zero when the queue is empty.
func (rc *receiver) done(delivered bool, next time.Time) {
	rc.statMu.Lock()
	if rc.queue > 0 {
		rc.queue--
	}
	rc.oldest = next
	if delivered {
		rc.sent++
	} else {
		rc.dropped++
	}
	rc.statMu.Unlock()
}

func (rc *receiver) failed(err error, at time.Time) {
	rc.statMu.Lock()
	rc.lastErr, rc.lastErrAt = err.Error(), at
	rc.statMu.Unlock()
}

func (rc *receiver) status(now time.Time) ReceiverStatus {
	rc.statMu.Lock()
	defer rc.statMu.Unlock()
	s := ReceiverStatus{Name: rc.name, Kind: rc.kind, Queue: rc.queue, Sent: rc.sent, Dropped: rc.dropped,
		LastError: rc.lastErr, LastErrorAt: rc.lastErrAt}
	if rc.queue > 0 && !rc.oldest.IsZero() {
		s.Oldest = max(0, now.Sub(rc.oldest))
	}
	return s
}
