package notify

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// The database: the latest state of every alert, the per-receiver outbox,
// the grouped receivers' group state (what was last sent) and the per-alert
// receivers' record of what they were sent. Times are Unix nanoseconds.
const schema = `
CREATE TABLE IF NOT EXISTS notify_alerts (
	fingerprint   TEXT PRIMARY KEY,
	labels        TEXT NOT NULL,
	annotations   TEXT NOT NULL,
	status        TEXT NOT NULL,
	starts_at     INTEGER NOT NULL,
	ends_at       INTEGER NOT NULL,
	generator_url TEXT NOT NULL,
	seq           INTEGER NOT NULL,
	acknowledged  INTEGER NOT NULL,
	muted         INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notify_outbox (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	receiver     TEXT NOT NULL,
	seq          INTEGER NOT NULL,           -- per receiver, rising: the delivery order
	key          TEXT NOT NULL,              -- idempotency key
	topic        TEXT NOT NULL DEFAULT '',   -- MQTT only
	retained     INTEGER NOT NULL DEFAULT 0, -- MQTT only
	payload      BLOB NOT NULL,
	caused_at    INTEGER NOT NULL,           -- Update of the change that caused it
	created_at   INTEGER NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL DEFAULT 0,
	state        INTEGER NOT NULL DEFAULT 0, -- 0 pending, 1 delivered, 2 failed permanently
	done_at      INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	UNIQUE (receiver, seq)
);
CREATE INDEX IF NOT EXISTS notify_outbox_queue ON notify_outbox (receiver, state, seq);
CREATE TABLE IF NOT EXISTS notify_groups (
	receiver   TEXT NOT NULL,
	group_key  TEXT NOT NULL,
	labels     TEXT NOT NULL,
	active     INTEGER NOT NULL, -- 0: forgotten (kept for notify_seq)
	created_at INTEGER NOT NULL,
	next_check INTEGER NOT NULL,
	last_sent  INTEGER NOT NULL,
	has_entry  INTEGER NOT NULL, -- a message was sent since the group (re)started
	notify_seq INTEGER NOT NULL,
	firing     TEXT NOT NULL,    -- fingerprint → seq last notified firing
	PRIMARY KEY (receiver, group_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notify_pushed (
	receiver     TEXT NOT NULL,
	fingerprint  TEXT NOT NULL,
	seq          INTEGER NOT NULL,
	status       TEXT NOT NULL,
	acknowledged INTEGER NOT NULL,
	PRIMARY KEY (receiver, fingerprint)
) WITHOUT ROWID;
`

func openDB(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" {
		return nil, fmt.Errorf("notify: no database path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("cannot create data directory: %w", err)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serialises anyway
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot create notify schema in %s: %w", path, err)
	}
	return db, nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("BUG: notify: cannot marshal %T: %v", v, err))
	}
	return string(b)
}

func saveAlert(ctx context.Context, tx *sql.Tx, a *alertState) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO notify_alerts (fingerprint, labels, annotations, status, starts_at, ends_at,
		generator_url, seq, acknowledged, muted, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (fingerprint) DO UPDATE SET labels = excluded.labels, annotations = excluded.annotations,
		status = excluded.status, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
		generator_url = excluded.generator_url, seq = excluded.seq, acknowledged = excluded.acknowledged,
		muted = excluded.muted, updated_at = excluded.updated_at`,
		a.Fingerprint, mustJSON(a.Labels), mustJSON(a.Annotations), a.Status, nanos(a.StartsAt), nanos(a.EndsAt),
		a.GeneratorURL, int64(a.Seq), b2i(a.Acknowledged), b2i(a.Muted), nanos(a.updated))
	return err
}

func saveGroup(ctx context.Context, tx *sql.Tx, rc *receiver, g *group) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO notify_groups (receiver, group_key, labels, active, created_at, next_check,
		last_sent, has_entry, notify_seq, firing) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (receiver, group_key) DO UPDATE SET active = excluded.active, created_at = excluded.created_at,
		next_check = excluded.next_check, last_sent = excluded.last_sent, has_entry = excluded.has_entry,
		notify_seq = excluded.notify_seq, firing = excluded.firing`,
		rc.name, g.key, mustJSON(g.labels), b2i(g.active), nanos(g.created), nanos(g.nextCheck), nanos(g.lastSent),
		b2i(g.hasEntry), int64(g.notifySeq), mustJSON(g.firing))
	return err
}

func savePushed(ctx context.Context, tx *sql.Tx, rc *receiver, fp string, p *pushed) error {
	if p == nil {
		_, err := tx.ExecContext(ctx, `DELETE FROM notify_pushed WHERE receiver = ? AND fingerprint = ?`, rc.name, fp)
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO notify_pushed (receiver, fingerprint, seq, status, acknowledged)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (receiver, fingerprint) DO UPDATE SET seq = excluded.seq,
		status = excluded.status, acknowledged = excluded.acknowledged`,
		rc.name, fp, int64(p.Seq), p.Status, b2i(p.Acknowledged))
	return err
}

func insertMessage(ctx context.Context, tx *sql.Tx, m *message) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO notify_outbox (receiver, seq, key, topic, retained, payload, caused_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, m.receiver, int64(m.seq), m.key, m.topic, b2i(m.retained), m.payload,
		nanos(m.causedAt), nanos(m.createdAt))
	if err != nil {
		return err
	}
	m.id, err = res.LastInsertId()
	return err
}

// batch is what one transaction adds: outbox messages and the group and
// pushed records to save. The in-memory state is changed as the batch is
// built; if the transaction fails, the notifier reloads it.
type batch struct {
	msgs   []*message
	groups map[*group]*receiver
	pushed []pushedWrite
}

type pushedWrite struct {
	rc *receiver
	fp string
	p  *pushed // nil: delete
}

func (b *batch) add(rc *receiver, m *message) {
	rc.nextSeq++
	m.receiver, m.seq = rc.name, rc.nextSeq
	b.msgs = append(b.msgs, m)
}

func (b *batch) touch(rc *receiver, g *group) {
	if b.groups == nil {
		b.groups = map[*group]*receiver{}
	}
	b.groups[g] = rc
}

func (b *batch) write(ctx context.Context, tx *sql.Tx, n *Notifier) error {
	for _, m := range b.msgs {
		if err := insertMessage(ctx, tx, m); err != nil {
			return err
		}
	}
	for g, rc := range b.groups {
		if err := saveGroup(ctx, tx, rc, g); err != nil {
			return err
		}
	}
	for _, w := range b.pushed {
		if err := savePushed(ctx, tx, w.rc, w.fp, w.p); err != nil {
			return err
		}
	}
	return nil
}

// applied tells the receivers of the committed messages.
func (b *batch) applied(n *Notifier) {
	byName := map[string]int{}
	for _, m := range b.msgs {
		byName[m.receiver]++
	}
	for _, rc := range n.receivers {
		if k := byName[rc.name]; k > 0 {
			rc.queued(k, b.firstCreated(rc.name))
		}
	}
}

func (b *batch) firstCreated(name string) time.Time {
	for _, m := range b.msgs {
		if m.receiver == name {
			return m.createdAt
		}
	}
	return time.Time{}
}
