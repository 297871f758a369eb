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
	mu     sync.Mutex
	loaded bool
	c      store.Commit
}

func newCommits(st store.Store) *commits {
	return &commits{st: st, streams: map[streamKey]*streamCommit{}}
}

// lock returns the stream's record, locked and loaded; call unlock when done.
func (c *commits) lock(ctx context.Context, gateway, stream string) (*streamCommit, error) {
	c.mu.Lock()
	s, ok := c.streams[streamKey{gateway, stream}]
	if !ok {
		s = &streamCommit{}
		c.streams[streamKey{gateway, stream}] = s
	}
	c.mu.Unlock()
	s.mu.Lock()
	if !s.loaded {
		rec, err := c.st.Committed(ctx, gateway, stream)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		s.c, s.loaded = rec, true
	}
	return s, nil
}

func (s *streamCommit) unlock() { s.mu.Unlock() }
