package influx

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
)

// Commit records ride with the next group's data. A group's records may be
// written only once its data is durable, so they used to go in a request
// of their own after it: half of the cloud's write requests, each a
// request and a WAL sync for InfluxDB, for a dozen lines (issue 15). Now a
// group leaves its records here once its data is durable, and the next
// group's data request carries them; when no group follows within
// recordLinger (a quiet moment), they are written alone. Until written,
// Committed answers from here: a record held is newer than any stored.
//
// A record is the whole state of its stream (what the stream's group
// stands at), so a newer one replaces an older one still waiting, and an
// older one is never written after a newer one was taken to be written: a
// stream's stored record only moves forward. A crash loses the records
// held (at most recordLinger or one group's worth): the batches they
// cover were acknowledged, so a gateway does not send them again, and a
// replay the store does not recognise is written again as the same points
// (InfluxDB keeps one point per series and time), as before this change
// when a crash fell between the acknowledgement and the records' request.

// recordLinger is how long records wait for a group's data request to
// carry them before they are written alone.
const recordLinger = 50 * time.Millisecond

type recordKey struct{ gateway, stream string }

type heldRecord struct {
	c   store.Commit
	gen uint64 // order of arrival: a higher one is newer
}

// records holds commit records not yet written.
type records struct {
	mu      sync.Mutex
	gen     uint64
	waiting map[recordKey]heldRecord // for a request to carry them
	taken   map[recordKey]heldRecord // in a request under way: the newest taken per stream
	timer   *time.Timer              // armed while records wait
	flush   func()                   // writes the waiting records alone (the timer's)
}

// add holds a group's records, to be written with the next request.
func (r *records) add(cs []store.StreamCommit) {
	if len(cs) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting == nil {
		r.waiting, r.taken = map[recordKey]heldRecord{}, map[recordKey]heldRecord{}
	}
	for _, c := range cs {
		r.gen++
		r.waiting[recordKey{c.Gateway, c.Stream}] = heldRecord{c: c.Commit, gen: r.gen}
	}
	if r.timer == nil && r.flush != nil {
		r.timer = time.AfterFunc(recordLinger, r.flush)
	}
}

// take hands every waiting record to a request: their lines, and the
// records to pass to done once the request is answered.
func (r *records) take(now time.Time) (*bytes.Buffer, map[recordKey]heldRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.waiting) == 0 {
		return nil, nil
	}
	out, buf := r.waiting, getBuf()
	r.waiting = map[recordKey]heldRecord{}
	for k, h := range out {
		r.taken[k] = h
		buf.WriteString(commitLine(k.gateway, k.stream, h.c, now))
	}
	return buf, out
}

// done is told whether the request carrying recs was written. Written, a
// record is stored; not written, it waits again unless a newer one for its
// stream was added or taken meanwhile.
func (r *records) done(recs map[recordKey]heldRecord, written bool) {
	if len(recs) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, h := range recs {
		if t, ok := r.taken[k]; ok && t.gen == h.gen {
			delete(r.taken, k)
		}
		if written {
			continue
		}
		if w, ok := r.waiting[k]; ok && w.gen > h.gen {
			continue
		}
		if t, ok := r.taken[k]; ok && t.gen > h.gen {
			continue
		}
		r.waiting[k] = h
	}
}

// held is the newest record of a stream not yet stored.
func (r *records) held(gateway, stream string) (store.Commit, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := recordKey{gateway, stream}
	if h, ok := r.waiting[k]; ok {
		return h.c, true
	}
	h, ok := r.taken[k]
	return h.c, ok
}

// flushRecords writes the waiting records alone: the linger passed and no
// group's request took them. A failure leaves them waiting for the next
// group (the database is down; the group's write reports it).
func (s *Store) flushRecords() {
	s.records.mu.Lock()
	s.records.timer = nil
	s.records.mu.Unlock()
	buf, recs := s.records.take(time.Now())
	if buf == nil {
		return
	}
	defer putBuf(buf)
	err := s.post(context.Background(), buf.Bytes())
	s.records.done(recs, err == nil)
}
