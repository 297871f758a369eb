package ingest

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Recovery (docs/decisions.md §40). A store write that fails is retried
// by the cloud itself, holding the group, every RetryWait at most, for
// StoreHold: a store that is back within it is written at once and the
// batches acknowledged without a resend. After the hold the group fails;
// each gateway that accepts it is sent a refusal with a retry hint
// (RetryHint, jittered), and sends the batch again then, not after its ack
// timeout. When the cloud (re)subscribes, the broker replays the gateways'
// retained states: each gateway online that accepts it is sent an online
// notice, and sends again at once what it published while no cloud was
// subscribed. A gateway that does not list these in its state's accepts
// (an older one) is sent neither, and resends after its ack timeout.

// StoreHold is the default of Options.StoreHold.
const StoreHold = 5 * time.Second

// RetryWait bounds the wait between two attempts at a failed group write:
// the first comes after FirstRetryWait, each later one twice as late. One
// request every half second per group held (at most MaxGroupsInFlight)
// costs a store that is down nothing, and a store that is back is written
// within half a second.
const (
	FirstRetryWait = 100 * time.Millisecond
	RetryWait      = 500 * time.Millisecond
)

// RetryHint is the mean of the retry hints sent with refusals; each is
// drawn uniformly from half of it to one and a half times it, so the
// gateways refused by one failed group do not come back in step. The hold
// paces a gateway's resends during a long outage (one window per
// StoreHold + RetryHint), not the hint.
const RetryHint = 500 * time.Millisecond

// retryHint draws a refusal's hint, in milliseconds; r is uniform in [0, 1).
func retryHint(r float64) uint32 {
	return uint32((RetryHint/2 + time.Duration(r*float64(RetryHint))).Milliseconds())
}

// peers remembers which optional ack fields each gateway accepts, from its
// latest online state.
type peers struct {
	mu sync.Mutex
	m  map[string]peer
}

type peer struct{ retry, online, resend bool }

func (ps *peers) set(gw string, s telemetry.State) {
	p := peer{retry: s.Accepting(telemetry.AckRetry), online: s.Accepting(telemetry.AckOnline),
		resend: s.Accepting(telemetry.AckResendFrom)}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.m == nil {
		ps.m = map[string]peer{}
	}
	if p == (peer{}) {
		delete(ps.m, gw)
		return
	}
	ps.m[gw] = p
}

func (ps *peers) get(gw string) peer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.m[gw]
}

// refuse tells gateway gw that first…last was not stored and when to send
// it again, if it accepts a retry hint; an older gateway is told nothing
// and sends again after its ack timeout. stream may be empty (a compact
// batch whose context could not be read does not name it).
func (in *Ingestor) refuse(gw, stream string, first, last uint64) {
	if first == 0 || last < first || !in.peers.get(gw).retry {
		return
	}
	in.m.refusals.Inc()
	in.publishAck(gw, telemetry.Ack{Stream: stream, First: first, Last: last, RetryMS: retryHint(rand.Float64())})
}

// greet sends gateway gw the online notice when the broker replays its
// retained online state, that is when this cloud has just subscribed: what
// gw published before may have reached no one.
func (in *Ingestor) greet(gw string, s telemetry.State, retained bool) {
	if !retained || s.State != telemetry.StateOnline || !s.Accepting(telemetry.AckOnline) {
		return
	}
	in.m.onlineNotices.Inc()
	in.publishAck(gw, telemetry.Ack{Online: true})
}

// storeRetry notes a failed attempt at a group write that is held and
// tried again.
func (in *Ingestor) storeRetry(err error, batches int, wait time.Duration) {
	in.m.storeRetries.Inc()
	in.failed.Store(time.Now().UnixNano())
	if ok, n := in.throttle.Allow("store_retry"); ok {
		in.log.Warn("cannot store a group of batches; holding it and trying again", "batches", batches,
			"retry_in", wait, "hold", in.o.StoreHold, "err", err, "similar_suppressed", n)
	}
}
