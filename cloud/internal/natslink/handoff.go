package natslink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The early-warning state moves with a partition. The engine saves each
// gateway's state after it writes it locally (alert/engine.Handoff); the
// link puts the newest one in a key-value bucket, keyed p<k>.<gw> so a
// partition's gateways are listed by a prefix. A replica that takes a
// partition loads its gateways' states into the engine before it pulls the
// partition's batches (SetTake). A replica that dies loses only the states
// not yet put: the last moments before its death.

// StatesBucket is the key-value bucket of the gateways' alert states.
func (l *Link) StatesBucket() string { return l.o.Stream + "_ALERTS" }

// stateKey is gateway gw's key in the states bucket.
func (l *Link) stateKey(gw string) string {
	return fmt.Sprintf("p%d.%s", Partition(gw, l.o.Partitions), gw)
}

// SetTake sets what a gateway's saved state is handed to when this replica
// takes its partition (the alert engine's Take). Set it before Run.
func (l *Link) SetTake(take func(gw string, state []byte) error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.take = take
}

// Save queues gateway gw's state for the bucket (alert/engine.Handoff); it
// never blocks: a newer state replaces one not yet put.
func (l *Link) Save(_ context.Context, gw string, state []byte) {
	l.mu.Lock()
	l.saves[gw] = state
	l.mu.Unlock()
	select {
	case l.saveReq <- struct{}{}:
	default:
	}
}

// saveLoop puts the queued states until ctx is done, then what is left.
func (l *Link) saveLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			l.putStates(fctx)
			cancel()
			return
		case <-l.saveReq:
			l.putStates(ctx)
		}
	}
}

func (l *Link) putStates(ctx context.Context) {
	l.mu.Lock()
	batch, kv := l.saves, l.states
	l.saves = map[string][]byte{}
	l.mu.Unlock()
	for gw, state := range batch {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := kv.Put(cctx, l.stateKey(gw), state)
		cancel()
		if err != nil {
			l.log.Warn("cannot save a gateway's alert state for the next replica; trying again", "gateway", gw, "err", err)
			l.mu.Lock()
			if _, newer := l.saves[gw]; !newer {
				l.saves[gw] = state
			}
			l.mu.Unlock()
			select {
			case l.saveReq <- struct{}{}:
			default:
			}
			if ctx.Err() == nil {
				select { // not in a tight loop while the cluster recovers
				case <-ctx.Done():
				case <-time.After(500 * time.Millisecond):
				}
			}
		}
	}
}

// takeStates hands the saved states of partition k's gateways to the
// engine; the ones this replica saved itself and has not yet put win.
func (l *Link) takeStates(ctx context.Context, k int) {
	l.mu.Lock()
	kv, take := l.states, l.take
	l.mu.Unlock()
	if kv == nil || take == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	lister, err := kv.ListKeysFiltered(cctx, fmt.Sprintf("p%d.>", k))
	if err != nil {
		l.log.Warn("cannot list the alert states of a partition taken; its gateways start afresh", "partition", k, "err", err)
		return
	}
	var keys []string
	for key := range lister.Keys() {
		keys = append(keys, key)
	}
	n := 0
	for _, key := range keys {
		gw := strings.TrimPrefix(key, fmt.Sprintf("p%d.", k))
		l.mu.Lock()
		_, pending := l.saves[gw]
		l.mu.Unlock()
		if pending {
			continue
		}
		e, err := kv.Get(cctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			l.log.Warn("cannot read a gateway's alert state; it starts afresh", "gateway", gw, "err", err)
			continue
		}
		if err := take(gw, e.Value()); err != nil {
			l.log.Warn("a gateway's saved alert state was refused; it starts afresh", "gateway", gw, "err", err)
			continue
		}
		n++
	}
	if n > 0 {
		l.log.Info("took the alert state of a partition's gateways", "partition", k, "gateways", n)
	}
}
