package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Group commit. Decoded batches of every gateway wait in one line; the
// first to arrive while no one leads the line starts a leader: while
// batches wait, it takes a write slot, forms a group of up to MaxGroupReadings readings
// (the oldest batch of each gateway in turn) and starts its commit —
// replay check against each stream's commit record, early warnings judged
// for the whole group with one durable write of their state, one store
// write (large requests, several at once), then the commit records — and
// forms the next group as soon as a slot is free. Under load the groups
// grow by themselves; a lone batch is written at once.
//
// The promises of a batch written alone are kept: acknowledged only once
// durable (with the data of every group it extends, run below); a replay
// recognised by its stream's commit record (durable, or of a batch of a
// group in flight, then answered only with that group); a stream's batches
// committed in the order they arrived (a gateway's messages are decoded one
// at a time, fair.go, and enter the line in order); a group that fails, or
// extends one that failed, acknowledges nothing.

// MaxGroupsInFlight is the default of Options.MaxGroupsInFlight: the
// groups whose data is being written at once, so the database has the next
// request in hand while one is answered (3, 4 and 6 measured alike;
// docs/benchmarks.md).
const MaxGroupsInFlight = 4

// MaxGroupReadings is the default of Options.MaxGroupReadings: 20,000
// readings make four requests of 5,000 lines for InfluxDB, its best size
// on the benchmark machine (docs/benchmarks.md).
const MaxGroupReadings = 20_000

// maxUnsettledFactor bounds the groups in flight whose data is written but
// not yet known durable (waiting for the groups they extend), in multiples
// of MaxGroupsInFlight.
const maxUnsettledFactor = 4

// maxWaiting bounds the readings waiting for a group: a decoder that finds
// the line this full waits (backpressure through the intake to MQTT).
const maxWaitingFactor = 4

// pending is a decoded batch waiting for its group.
type pending struct {
	gw  string
	b   *telemetry.Batch
	def *telemetry.CompactContext
	sc  *streamCommit // loaded by the decoder
	// first and last are the batch's range, kept whatever is dropped from
	// it: the ack and the commit record cover every item the gateway sent.
	first, last uint64
	// reply, when set, is told the outcome (Submit); else the ingestor
	// acknowledges over MQTT.
	reply chan outcome
	// msg is the message the batch came in (nil from Submit), finished
	// with the answer: a JetStream message is delivered again if the batch
	// was not stored.
	msg Message
	// resend, when not zero, asks the gateway to send its stream again from
	// there: a restored cloud's record ends below its claim (restored.go).
	resend uint64
}

type outcome struct {
	ack     telemetry.Ack
	dup, ok bool
}

func (p *pending) size() int { return max(p.b.Len(), 1) }

// line is where decoded batches wait for their group: a queue per
// gateway, and the gateways served in turn when a group is formed, so a
// gateway flooding the intake with large batches puts one of them in each
// group while every other gateway's next batch goes in the same group.
type line struct {
	mu      sync.Mutex
	room    sync.Cond // a group was taken: room for more
	queues  map[string]*gwLine
	ready   []*gwLine // gateways with batches waiting, in turn
	size    int       // readings waiting, all gateways
	leading bool
}

type gwLine struct {
	gw    string
	items []*pending
	size  int
}

// enqueue puts p in line and, if no one leads the line, starts a leader
// (lead). It returns once p is in line: the caller — a decoding worker, a
// station listener's Submit — is never held to write other batches. While
// the line is led it waits for room: when the line holds maxWaitingFactor
// groups' worth, or p's gateway already has a group's worth waiting
// (backpressure through the intake to MQTT; a gateway's empty queue takes
// any batch).
func (in *Ingestor) enqueue(p *pending) {
	l := &in.line
	limit := in.o.MaxGroupReadings
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.queues == nil {
		l.queues = map[string]*gwLine{}
	}
	for l.leading {
		q := l.queues[p.gw]
		if l.size <= maxWaitingFactor*limit && (q == nil || q.size+p.size() <= limit) {
			break
		}
		l.room.Wait()
	}
	q := l.queues[p.gw]
	if q == nil {
		q = &gwLine{gw: p.gw}
		l.queues[p.gw] = q
		l.ready = append(l.ready, q)
	}
	q.items = append(q.items, p)
	q.size += p.size()
	l.size += p.size()
	if !l.leading {
		l.leading = true
		in.running.Add(1) // the leader is counted: the groups it starts are added while it runs
		go in.lead()
	}
}

// lead forms groups while batches wait, then ends (a new leader is started
// by the next batch): a slot first, then the group, formed of what waits
// once it can be written, so a batch that arrived meanwhile is in it.
func (in *Ingestor) lead() {
	defer in.running.Done()
	l := &in.line
	limit := in.o.MaxGroupReadings
	l.mu.Lock()
	for len(l.ready) > 0 {
		l.mu.Unlock()
		in.inFlight <- struct{}{}
		in.unsettled <- struct{}{}
		l.mu.Lock()
		group := l.take(limit)
		l.room.Broadcast()
		l.mu.Unlock()
		in.commitGroup(group)
		l.mu.Lock()
	}
	l.leading = false
	l.room.Broadcast()
	l.mu.Unlock()
}

// take forms a group of at most limit readings (at least one batch): the
// oldest batch of each gateway in turn, round after round.
func (l *line) take(limit int) []*pending {
	var group []*pending
	size := 0
	for len(l.ready) > 0 {
		q := l.ready[0]
		p := q.items[0]
		if len(group) > 0 && size+p.size() > limit {
			break
		}
		group = append(group, p)
		size += p.size()
		q.items[0] = nil
		q.items = q.items[1:]
		q.size -= p.size()
		l.size -= p.size()
		l.ready = l.ready[1:]
		if len(q.items) > 0 {
			l.ready = append(l.ready, q)
		} else {
			delete(l.queues, q.gw)
		}
	}
	return group
}

// run is one group commit in flight. Up to MaxGroupsInFlight are written at
// once. A stream's record in a group extends the record an earlier group in
// flight will leave, so a group depends on those groups: its batches are
// acknowledged once its own data and theirs are durable (its acks do not
// wait for anyone's commit records), and if one of them failed it fails
// too, acknowledging nothing (its batches come again); its commit records
// are written after theirs, so the newest record holds the most. A group
// formed once such a failure is known starts again from the durable
// records.
type run struct {
	data   chan struct{} // closed once dataOK is set: the data is durable, or failed
	dataOK bool
	done   chan struct{} // closed once the commit records are written, or failed
	began  time.Time
}

// errEarlierGroup: a group this one extends was not stored, so this one is
// not committed either.
var errEarlierGroup = errors.New("an earlier group of batches was not stored; this one is sent again with it")

// commitGroup forms a group and starts its commit; it returns once the
// group is in flight. The caller leads the line and holds a slot of
// inFlight, which the group gives back when it is finished.
func (in *Ingestor) commitGroup(group []*pending) {
	r := &run{data: make(chan struct{}), done: make(chan struct{}), began: time.Now()}
	in.runsMu.Lock()
	in.runs[r] = true
	in.runsMu.Unlock()

	type answer struct {
		p   *pending
		dup bool // a replay of a batch of an earlier group in flight: answered with this group
	}
	var answers []answer
	var batches []*telemetry.Batch
	var defs []*telemetry.CompactContext
	working := map[*streamCommit]store.Commit{} // each stream's record as the group stands
	var order []*streamCommit
	var dataDeps, metaDeps []*run // groups in flight whose data, and whose records, this one extends
	in.commitMu.Lock()
	for _, p := range group {
		sc := p.sc
		c, seen := working[sc]
		if !seen {
			c = sc.c
			if sr := sc.specRun; sr != nil {
				if !closed(sr.data) {
					c = sc.spec // as the group in flight will leave it
					dataDeps = appendNew(dataDeps, sr)
				}
				if !closed(sr.done) {
					metaDeps = appendNew(metaDeps, sr)
				}
			}
		}
		if c.Covers(p.first, p.last) {
			in.m.duplicates.Inc()
			p.resend = in.resendFrom(c, p)
			// A replay that defines a compact context (a gateway restarted
			// with a new one, resending what was stored before its ack
			// came) has its context stored before the ack, which confirms
			// the context to the gateway: its next batch refers to it.
			def := p.def != nil && !in.contexts.has(p.def)
			if sc.c.Covers(p.first, p.last) && !def {
				// Durable already: acknowledged again at once, not written
				// or judged twice.
				in.answer(p, outcome{ack: telemetry.Ack{Stream: p.b.Stream, First: p.first, Last: p.last,
					Through: sc.c.Through, ResendFrom: p.resend}, dup: true, ok: true})
				continue
			}
			answers = append(answers, answer{p: p, dup: true})
			if def {
				defs = append(defs, p.def)
			}
			continue
		}
		if n := trimCovered(p.b, c); n > 0 {
			in.m.overlap.Add(float64(n))
		}
		in.dropFuture(p.gw, p.b, p.first, p.last)
		if !seen {
			order = append(order, sc)
		}
		working[sc], p.resend = in.extend(c, p)
		answers = append(answers, answer{p: p})
		batches = append(batches, p.b)
		if p.def != nil {
			defs = append(defs, p.def)
		}
	}
	for _, sc := range order {
		sc.spec, sc.specRun = working[sc], r
	}
	in.commitMu.Unlock()

	// The write slot is given back once the group's data is written (or
	// failed), the unsettled one once it is known whether the data of the
	// groups it extends is durable too: the next group's data should be on
	// its way while this one waits for those and writes its records.
	var slotOnce, dataOnce sync.Once
	freeSlot := func() { slotOnce.Do(func() { <-in.inFlight }) }
	settle := func(ok bool) {
		dataOnce.Do(func() { r.dataOK = ok; close(r.data); <-in.unsettled })
		freeSlot()
	}
	finish := func() {
		settle(false) // if the data never became durable
		close(r.done)
		in.runsMu.Lock()
		delete(in.runs, r)
		in.runsMu.Unlock()
	}
	fail := func(err error) {
		settle(false)
		for _, a := range answers {
			if !errors.Is(err, errEarlierGroup) {
				in.storeFailed(a.p.gw, a.p.b, err)
			}
			in.answer(a.p, outcome{})
		}
	}
	if len(answers) == 0 { // only replays of durable batches, answered
		settle(true)
		finish()
		return
	}
	// Not the leader's context: the group is everyone's. When the cloud
	// shuts down, writes still under way fail, unacknowledged.
	ctx, cancel := context.WithTimeout(in.life, 30*time.Second)
	if in.o.Alerts != nil && len(batches) > 0 {
		// Judged before they are stored, so a crash between the two cannot
		// lose a warning: the batches come again, and what the engine has
		// already judged it does not judge twice.
		if err := in.o.Alerts.Observe(ctx, batches...); err != nil {
			cancel()
			fail(fmt.Errorf("judging early warnings: %w", err))
			finish()
			return
		}
	}
	var acked bool
	var g *store.Group
	// durable runs once the group's data is durable (store.Group.Ready):
	// when the groups it extends are durable too, its batches are
	// acknowledged; then it waits for their commit records to be written.
	durable := func(context.Context) error {
		freeSlot() // written: the next group's data may go while this one waits for those it extends
		for _, d := range dataDeps {
			if <-d.data; !d.dataOK {
				return errEarlierGroup
			}
		}
		in.commitMu.Lock()
		for _, sc := range order {
			sc.c = working[sc]
		}
		in.commitMu.Unlock()
		settle(true)
		acked = true
		in.stored.Store(time.Now().UnixNano())
		in.m.groups.Observe(float64(len(batches)))
		for _, a := range answers {
			if u := g.Left(a.p.b); u.Count > 0 && !a.dup {
				in.unwritable(a.p.gw, a.p.first, u)
			}
			in.acknowledge(a.p, a.dup)
		}
		// Answered: the batches need not stay in memory while the commit
		// records wait their turn.
		answers, batches, g.Batches = nil, nil, nil
		for _, d := range metaDeps {
			<-d.done
		}
		return nil
	}
	g = &store.Group{Batches: batches, Contexts: defs, Stored: time.Now(), Ready: durable}
	for _, sc := range order {
		g.Commits = append(g.Commits, store.StreamCommit{Gateway: sc.gateway, Stream: sc.stream, Commit: working[sc]})
	}
	in.running.Add(1)
	go func() {
		defer in.running.Done()
		defer cancel()
		defer finish()
		// Each reading's delay is measured to g.Stored: only batches no
		// commit record covers are written, so a replay counts no reading
		// twice. A write that fails before the data is durable is held and
		// tried again for StoreHold (recovery.go); not when a group it
		// extends failed: that is final.
		err := in.o.Store.WriteGroup(ctx, g)
		hold := time.Now().Add(in.o.StoreHold)
		retry := func(wait time.Duration) bool {
			return err != nil && !acked && !errors.Is(err, errEarlierGroup) && ctx.Err() == nil &&
				time.Now().Add(wait).Before(hold)
		}
		for wait := FirstRetryWait; retry(wait); wait = min(2*wait, RetryWait) {
			in.storeRetry(err, len(g.Batches), wait)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			g.Stored = time.Now()
			err = in.o.Store.WriteGroup(ctx, g)
		}
		in.m.storeSeconds.Observe(time.Since(g.Stored).Seconds())
		switch {
		case err == nil && !acked:
			// A store must call Ready (store.Group): one that did not may
			// have written records ahead of the groups they extend, so
			// nothing is acknowledged (the batches come again, as replays).
			fail(errors.New("BUG: the store did not call Ready"))
		case err != nil && acked:
			// The batches are stored and acknowledged; only the commit
			// records are missing. The next group's records hold these
			// ranges too; until then a replay is written again (the same
			// points) rather than recognised.
			in.m.storeErrors.Inc()
			if ok, n := in.throttle.Allow("commit_record"); ok {
				in.log.Error("cannot write the commit records of stored batches; a replay of them is written again",
					"err", err, "similar_suppressed", n)
			}
		case err != nil:
			fail(err)
		}
	}()
}

// acknowledge answers a batch of a group whose data is durable.
func (in *Ingestor) acknowledge(p *pending, dup bool) {
	through := p.sc.through(&in.commitMu)
	if p.def != nil {
		in.contexts.Put(p.def)
	}
	if dup {
		in.answer(p, outcome{ack: telemetry.Ack{Stream: p.b.Stream, First: p.first, Last: p.last,
			Through: through, ResendFrom: p.resend}, dup: true, ok: true})
		return
	}
	in.m.batches.Inc()
	in.m.readings.Add(float64(len(p.b.Readings)))
	in.m.events.Add(float64(len(p.b.Events)))
	if p.b.Backlog {
		in.m.backlog.Add(float64(p.b.Len()))
	}
	in.devicesRefused(p.gw, "batch", in.o.Registry.ObserveBatch(p.b))
	in.answer(p, outcome{ack: telemetry.Ack{Stream: p.b.Stream, First: p.first, Last: p.last,
		Through: through, ResendFrom: p.resend}, ok: true})
}

func appendNew(rs []*run, r *run) []*run {
	if slices.Contains(rs, r) {
		return rs
	}
	return append(rs, r)
}

// closed reports whether c is closed.
func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// oldestRun is when the oldest group in flight began (zero: none).
func (in *Ingestor) oldestRun() time.Time {
	in.runsMu.Lock()
	defer in.runsMu.Unlock()
	var t time.Time
	for r := range in.runs {
		if t.IsZero() || r.began.Before(t) {
			t = r.began
		}
	}
	return t
}

// answer tells a batch's sender what became of it: Submit's caller, or the
// gateway by an ack over MQTT; when it was not stored, by a refusal with a
// retry hint if the gateway accepts one (else nothing: it sends the batch
// again after its ack timeout).
func (in *Ingestor) answer(p *pending, o outcome) {
	if p.msg != nil {
		defer finish(p.msg, o.ok)
	}
	switch {
	case p.reply != nil:
		p.reply <- o
	case o.ok:
		in.publishAck(p.gw, o.ack)
	default:
		in.refuse(p.gw, p.b.Stream, p.first, p.last)
	}
}

// unwritable counts and logs (throttled) readings the store could not
// represent: left out, the rest of their batch stored and acknowledged.
func (in *Ingestor) unwritable(gw string, first uint64, u store.Unwritable) {
	in.m.unwritable.Add(float64(u.Count))
	if ok, n := in.throttle.Allow("unwritable"); ok {
		in.log.Warn("readings the store cannot keep were left out; the rest of the batch is stored", "gateway", gw,
			"first_seq", first, "left_out", u.Count, "err", u.First, "similar_suppressed", n)
	}
}
