package ingest

import (
	"container/list"
	"context"
	"sync"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// contexts resolves compact contexts: from a bounded memory of the most
// recently used, else from the store (shared by every replica). Versions
// never change once defined, so the memory never needs invalidating.
type contexts struct {
	st    store.Store
	max   int
	mu    sync.Mutex
	byKey map[ctxKey]*list.Element
	lru   *list.List // of *telemetry.CompactContext, most recent first
}

type ctxKey struct {
	gateway     string
	id, version uint32
}

// maxContexts bounds the memory: a gateway refers to one version at a time
// (its newest confirmed), so this covers that many gateways with room.
const maxContexts = 50_000

func newContexts(st store.Store) *contexts {
	return &contexts{st: st, max: maxContexts, byKey: map[ctxKey]*list.Element{}, lru: list.New()}
}

// CompactContext implements telemetry.Contexts.
func (c *contexts) CompactContext(ctx context.Context, gateway string, id, version uint32) (*telemetry.CompactContext, error) {
	k := ctxKey{gateway, id, version}
	c.mu.Lock()
	if e, ok := c.byKey[k]; ok {
		c.lru.MoveToFront(e)
		cc := e.Value.(*telemetry.CompactContext)
		c.mu.Unlock()
		return cc, nil
	}
	c.mu.Unlock()
	cc, err := c.st.CompactContext(ctx, gateway, id, version)
	if err != nil {
		return nil, err
	}
	c.Put(cc)
	return cc, nil
}

// has reports whether the memory holds cc's version (it was stored).
func (c *contexts) has(cc *telemetry.CompactContext) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.byKey[ctxKey{cc.Gateway, cc.ID, cc.Version}]
	return ok
}

// Put remembers a context (one the ingestor just stored).
func (c *contexts) Put(cc *telemetry.CompactContext) {
	k := ctxKey{cc.Gateway, cc.ID, cc.Version}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.lru.MoveToFront(e)
		return
	}
	c.byKey[k] = c.lru.PushFront(cc)
	for c.lru.Len() > c.max {
		old := c.lru.Remove(c.lru.Back()).(*telemetry.CompactContext)
		delete(c.byKey, ctxKey{old.Gateway, old.ID, old.Version})
	}
}
