package ingest

import (
	"context"
	"sync"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
)

// commits is the ingestor's memory of what each gateway stream has stored,
// loaded from the store the first time a stream is seen, so a replayed
// batch is recognised across restarts (and, in the store, across
// replicas). Each stream has a lock held from reading its record to
// writing the batch with the new one, so concurrent workers never write a
// record that forgets what another just added.
type commits struct {
	st      store.Store
	mu      sync.Mutex
	streams map[streamKey]*streamCommit
}

type streamKey struct{ gateway, stream string }

type streamCommit struct {
	gateway, stream string
	mu              sync.Mutex // held while loading
	loaded          bool
	// c is the stream's durable record; spec what it will be once specRun,
	// the newest group in flight with batches of the stream, is committed
	// (group.go). Guarded by the ingestor's commitMu once loaded.
	c       store.Commit
	spec    store.Commit
	specRun *run
}

// through is the stream's durable Through.
func (s *streamCommit) through(mu *sync.Mutex) uint64 {
	mu.Lock()
	defer mu.Unlock()
	return s.c.Through
}

func newCommits(st store.Store) *commits {
	return &commits{st: st, streams: map[streamKey]*streamCommit{}}
}

// load returns the stream's record, read from the store the first time.
func (c *commits) load(ctx context.Context, gateway, stream string) (*streamCommit, error) {
	c.mu.Lock()
	s, ok := c.streams[streamKey{gateway, stream}]
	if !ok {
		s = &streamCommit{gateway: gateway, stream: stream}
		c.streams[streamKey{gateway, stream}] = s
	}
	c.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded {
		rec, err := c.st.Committed(ctx, gateway, stream)
		if err != nil {
			return nil, err
		}
		s.c, s.loaded = rec, true
	}
	return s, nil
}
