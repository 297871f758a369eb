// Package notify is the early-warning notifier: the engine hands it the
// latest state of alert instances (Update), it keeps them and the
// notifications computed from them in a durable SQLite outbox, and it
// delivers them to receivers — Alertmanager webhooks (v4, grouped as
// Alertmanager groups), an Alertmanager's /api/v2/alerts, signed JSON
// webhooks and MQTT — in order, at least once, each with an idempotency key.
//
// Lifecycle: Open → Update (any goroutine) / Run (one goroutine, until its
// context ends) → Close. Update returns once the change is durable; Run
// groups, schedules and delivers. See docs/notifications.md.
package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/internal/secretfile"
	"github.com/fieldwatch/fieldwatch/internal/throttle"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// Alert is one alert instance as the notifier sees it: its identity and
// latest state.
type Alert struct {
	Fingerprint  string            // 16 lowercase hex chars; identity (rule + series)
	Labels       map[string]string // always: alertname, severity (blue|yellow|orange|red), level ("4".."1"), rule; usually site, gateway_id, device, metric
	Annotations  map[string]string // summary, description, value, threshold, threshold_source, standard, runbook_url ...
	Status       string            // "firing" or "resolved"
	StartsAt     time.Time
	EndsAt       time.Time // zero while firing
	GeneratorURL string    // link to our dashboard
	Seq          uint64    // increases on every change of this instance (state, level); part of the idempotency key
	Acknowledged bool      // ack stops repeat notifications until the level rises or it resolves
	Muted        bool      // silenced or inhibited: do not notify; if it was notified firing, still notify its resolution
}

// Alert statuses.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Options are Open's dependencies.
type Options struct {
	Path      string // SQLite file of the outbox and of the alert table (created if missing)
	Config    Config
	Publisher Publisher // for MQTT receivers; may be nil if none configured
	Log       *slog.Logger
	Metrics   prometheus.Registerer
	Now       func() time.Time // nil: time.Now (tests may pass a controllable clock)
}

// Publisher publishes one MQTT message (QoS 1) and returns when the broker
// has it. It must be safe for use by one goroutine per MQTT receiver.
type Publisher interface {
	Publish(ctx context.Context, topic string, retained bool, payload []byte) error
}

// ReceiverStatus is one receiver's delivery state, for the API.
type ReceiverStatus struct {
	Name        string        `json:"name"`
	Kind        string        `json:"kind"`
	Queue       int           `json:"queue"`                // undelivered notifications
	Oldest      time.Duration `json:"oldest"`               // age of the oldest undelivered one
	Sent        uint64        `json:"sent"`                 // delivered since Open
	Dropped     uint64        `json:"dropped"`              // permanently refused since Open
	LastError   string        `json:"last_error,omitempty"` // of the latest failed attempt
	LastErrorAt time.Time     `json:"last_error_at,omitzero"`
}

// Notifier queues and delivers notifications. Update and Status are safe for
// concurrent use.
type Notifier struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	db       *sql.DB
	m        *metrics
	reg      prometheus.Registerer
	throttle *throttle.Throttle

	receivers []*receiver
	wakeSched chan struct{}

	// mu guards the in-memory state mirrored from the database: alerts,
	// each receiver's groups, pushed records and next outbox seq.
	mu        sync.Mutex
	alerts    map[string]*alertState
	lastPrune time.Time

	runMu   sync.Mutex
	cancel  context.CancelFunc
	running sync.WaitGroup
	closed  bool
}

// alertState is an Alert and when its latest change was recorded.
type alertState struct {
	Alert
	updated time.Time
}

// Open opens (creating if needed) the notifier's database at o.Path, reads
// the webhook secrets and registers the metrics.
func Open(ctx context.Context, o Options) (*Notifier, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = prometheus.NewRegistry()
	}
	var r yamlconf.Report
	o.Config.ValidateAt(&r, "")
	if err := r.Err("notify config", nil); err != nil {
		return nil, err
	}
	n := &Notifier{cfg: o.Config, log: o.Log, now: o.Now, reg: o.Metrics, throttle: throttle.New(10 * time.Second),
		wakeSched: make(chan struct{}, 1), alerts: map[string]*alertState{}}
	for i, rc := range o.Config.Receivers {
		r, err := newReceiver(n, i, rc, o.Publisher)
		if err != nil {
			return nil, err
		}
		n.receivers = append(n.receivers, r)
	}
	db, err := openDB(ctx, o.Path)
	if err != nil {
		return nil, err
	}
	n.db = db
	if err := n.load(ctx); err != nil {
		db.Close()
		return nil, err
	}
	m, err := newMetrics(o.Metrics, n.receivers, n.now)
	if err != nil {
		db.Close()
		return nil, err
	}
	n.m = m
	return n, nil
}

// Close stops Run, if running, and closes the database.
func (n *Notifier) Close() error {
	n.runMu.Lock()
	if n.closed {
		n.runMu.Unlock()
		return nil
	}
	n.closed = true
	if n.cancel != nil {
		n.cancel()
	}
	n.runMu.Unlock()
	n.running.Wait()
	n.m.unregister(n.reg)
	return n.db.Close()
}

// Status reports every receiver's queue, in configuration order.
func (n *Notifier) Status() []ReceiverStatus {
	now := n.now()
	out := make([]ReceiverStatus, 0, len(n.receivers))
	for _, rc := range n.receivers {
		out = append(out, rc.status(now))
	}
	return out
}

var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// check returns why a is refused, or "".
func check(a *Alert) string {
	switch {
	case !fingerprintRE.MatchString(a.Fingerprint):
		return "fingerprint is not 16 lowercase hex digits"
	case a.Status != StatusFiring && a.Status != StatusResolved:
		return fmt.Sprintf("status %q is neither firing nor resolved", a.Status)
	case a.Labels["alertname"] == "" || a.Labels["rule"] == "":
		return "labels alertname and rule are required"
	case severityRank(a.Labels["severity"]) < 0:
		return fmt.Sprintf("severity %q is not blue, yellow, orange or red", a.Labels["severity"])
	case !strings.Contains("1234", a.Labels["level"]) || len(a.Labels["level"]) != 1:
		return fmt.Sprintf("level %q is not 1..4", a.Labels["level"])
	case a.StartsAt.IsZero():
		return "startsAt is missing"
	}
	return ""
}

// Update records the latest state of alerts; it returns once it is durable,
// with the notifications for per-alert receivers queued and the groups of
// grouped receivers updated. Invalid alerts and changes older than the one
// recorded (a lower Seq) are refused: logged, counted and skipped.
func (n *Notifier) Update(ctx context.Context, alerts []Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	tx, err := n.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot record alerts: %w", err)
	}
	defer tx.Rollback()
	var b batch
	for i := range alerts {
		a := alerts[i]
		if why := check(&a); why != "" {
			n.refuse("invalid", a.Fingerprint, why)
			continue
		}
		old := n.alerts[a.Fingerprint]
		if old != nil && a.Seq < old.Seq {
			n.refuse("stale", a.Fingerprint, fmt.Sprintf("seq %d is older than the recorded %d", a.Seq, old.Seq))
			continue
		}
		if a.Status == StatusResolved && a.EndsAt.IsZero() {
			a.EndsAt = now
		}
		if a.Status == StatusFiring {
			a.EndsAt = time.Time{}
		}
		cur := &alertState{Alert: cloneAlert(a), updated: now}
		if old != nil && old.Seq == cur.Seq && old.Status == cur.Status {
			cur.updated = old.updated // a refresh (annotations, ack, mute) is not a new change
		}
		if err := saveAlert(ctx, tx, cur); err != nil {
			return n.failed(err)
		}
		n.alerts[a.Fingerprint] = cur
		for _, rc := range n.receivers {
			if rc.cfg.grouped() {
				n.regroup(rc, old, cur, now, &b)
			} else {
				rc.onChange(n, cur, now, &b)
			}
		}
	}
	if err := b.write(ctx, tx, n); err != nil {
		return n.failed(err)
	}
	if err := tx.Commit(); err != nil {
		return n.failed(err)
	}
	b.applied(n)
	select {
	case n.wakeSched <- struct{}{}:
	default:
	}
	return nil
}

// failed reloads the in-memory state after a transaction that did not
// commit, so memory matches the database again.
func (n *Notifier) failed(err error) error {
	if lerr := n.reloadLocked(context.Background()); lerr != nil {
		n.log.Error("cannot reload notifier state", "err", lerr)
	}
	return fmt.Errorf("cannot record alerts: %w", err)
}

func (n *Notifier) refuse(reason, fp, why string) {
	n.m.refused.WithLabelValues(reason).Inc()
	if ok, held := n.throttle.Allow("refuse/" + reason); ok {
		n.log.Warn("alert refused", "reason", reason, "fingerprint", fp, "why", why, "held_back", held)
	}
}

func cloneAlert(a Alert) Alert {
	a.Labels = cloneMap(a.Labels)
	a.Annotations = cloneMap(a.Annotations)
	return a
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// readSecret reads a webhook's key file, and says whether others can
// get at it.
func readSecret(path string) ([]byte, *secretfile.Loose, error) {
	b, loose, err := secretfile.Read(path)
	if err != nil {
		return nil, nil, err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, nil, errors.New("file is empty")
	}
	return []byte(s), loose, nil
}
