package ingest

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// fair is the intake between the MQTT handler and the workers: one FIFO
// queue per gateway, the gateways served round-robin, at most
// gatewayInFlight messages of one gateway in the workers' hands at once.
// A gateway that floods the intake with expensive batches therefore holds
// one worker, and every other gateway's next message is taken by the next
// free worker, whatever the flood has queued.
//
// Nothing is lost: put blocks while the whole intake is full (the MQTT
// client then stops reading: backpressure), and a queued message is
// acknowledged only once a worker has stored it, so one lost at shutdown is
// sent again by its gateway. A gateway whose own queue is full is refused
// at once instead (put returns errGatewayFull; the ingestor counts it and
// does not acknowledge, so the gateway sends it again): waiting for it
// would stop the MQTT client reading for everyone, since paho hands
// messages over one at a time. A gateway that follows the protocol never
// fills its queue.
//
// One gateway's messages are processed one at a time in the order they
// arrived (batches and states alike). Batches of one stream were already
// serialised by the stream's commit lock (commits.go); holding them back
// in the queue rather than in a worker waiting on that lock is what frees
// the workers for the other gateways.
type fair struct {
	lim      fairLimits
	backedUp *atomic.Int64 // when put began to wait for room (Unix ns; 0: not waiting)

	mu       sync.Mutex
	work     sync.Cond // a gateway became ready, or closed
	room     sync.Cond // a message left a queue, or closed
	queues   map[string]*gwQueue
	ready    []*gwQueue // gateways with a message to hand out, in turn
	msgs     int        // queued, all gateways
	bytes    int
	closed   bool
	maxDepth int // the most messages queued at once (tests)
}

// fairLimits bound the intake. A message is always admitted to an empty
// gateway queue if the intake as a whole has room, so a gateway's largest
// batch is never refused.
type fairLimits struct {
	gatewayInFlight int // a gateway's messages in workers' hands at once
	gatewayMsgs     int // queued messages per gateway
	gatewayBytes    int // queued payload bytes per gateway
	totalMsgs       int // queued messages, all gateways
	totalBytes      int // queued payload bytes, all gateways
}

// defaultFairLimits: a gateway keeps at most 64 batches in flight
// (uplink.max_in_flight ≤ 64), so one that follows the protocol never fills
// its queue of 128; 32 MiB holds 64 of the largest batches a gateway can be
// configured to send (10 000 readings, under 200 KB each) many times over.
// The intake holds at most 128 MiB of payloads: 16 gateways flooding with
// the largest batches before the others wait behind them.
var defaultFairLimits = fairLimits{gatewayInFlight: 1, gatewayMsgs: 128, gatewayBytes: 32 << 20,
	totalMsgs: 8192, totalBytes: 128 << 20}

// errGatewayFull: the sender's own queue is full; the message is refused,
// not queued.
var errGatewayFull = errors.New("this gateway already has as many messages waiting as it may; " +
	"refused unacknowledged, so the gateway sends it again")

// errClosed: the intake is closed.
var errClosed = errors.New("the intake is closed")

type gwQueue struct {
	key      string
	msgs     []Message
	bytes    int
	inFlight int
	inReady  bool
}

func newFair(lim fairLimits, backedUp *atomic.Int64) *fair {
	f := &fair{lim: lim, backedUp: backedUp, queues: map[string]*gwQueue{}}
	f.work.L, f.room.L = &f.mu, &f.mu
	return f
}

// put queues msg from gateway key, waiting while the whole intake is full.
// It returns errGatewayFull at once, without queueing, when the gateway's
// own queue is full, and errClosed once the intake is closed.
func (f *fair) put(key string, msg Message) error {
	size := len(msg.Payload())
	f.mu.Lock()
	defer f.mu.Unlock()
	for waiting := false; ; {
		if f.closed {
			return errClosed
		}
		// Looked up again after each wait: done may have dropped an idle queue.
		q := f.queues[key]
		if q == nil {
			q = &gwQueue{key: key}
			f.queues[key] = q
		}
		if !f.gatewayRoom(q, size) {
			if q.inFlight == 0 && len(q.msgs) == 0 {
				delete(f.queues, key)
			}
			return errGatewayFull
		}
		if f.intakeRoom(size) {
			q.msgs = append(q.msgs, msg)
			q.bytes += size
			f.msgs++
			f.bytes += size
			f.maxDepth = max(f.maxDepth, f.msgs)
			f.makeReady(q)
			return nil
		}
		if !waiting {
			waiting = true
			f.backedUp.Store(time.Now().UnixNano())
			defer f.backedUp.Store(0)
		}
		f.room.Wait()
	}
}

// gatewayRoom: an empty queue takes any message, so a gateway's largest
// batch is never refused.
func (f *fair) gatewayRoom(q *gwQueue, size int) bool {
	return len(q.msgs) == 0 || (len(q.msgs) < f.lim.gatewayMsgs && q.bytes+size <= f.lim.gatewayBytes)
}

func (f *fair) intakeRoom(size int) bool {
	return f.msgs == 0 || (f.msgs < f.lim.totalMsgs && f.bytes+size <= f.lim.totalBytes)
}

// makeReady puts q at the back of the line if it has a message to hand out.
func (f *fair) makeReady(q *gwQueue) {
	if !q.inReady && len(q.msgs) > 0 && q.inFlight < f.lim.gatewayInFlight {
		q.inReady = true
		f.ready = append(f.ready, q)
		f.work.Signal()
	}
}

// next waits for the next gateway's turn and returns its oldest message;
// the caller calls done(q) when it has processed it. ok is false once the
// intake is closed.
func (f *fair) next() (q *gwQueue, msg Message, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for !f.closed && len(f.ready) == 0 {
		f.work.Wait()
	}
	if f.closed {
		return nil, nil, false
	}
	q = f.ready[0]
	f.ready[0] = nil
	f.ready = f.ready[1:]
	q.inReady = false
	msg = q.msgs[0]
	q.msgs[0] = nil
	q.msgs = q.msgs[1:]
	size := len(msg.Payload())
	q.bytes -= size
	f.msgs--
	f.bytes -= size
	q.inFlight++
	f.makeReady(q) // its next message waits for its next turn
	f.room.Broadcast()
	return q, msg, true
}

// done says a message of q's is processed.
func (f *fair) done(q *gwQueue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q.inFlight--
	f.makeReady(q)
	if q.inFlight == 0 && len(q.msgs) == 0 && f.queues[q.key] == q {
		delete(f.queues, q.key) // a quiet gateway costs nothing
	}
}

// close wakes every waiter: put and next return false from now on.
func (f *fair) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.work.Broadcast()
	f.room.Broadcast()
}
