package ingest

import (
	"sort"
	"sync"
)

// commits tracks, per gateway stream, the highest sequence up to which
// every reading is known to be stored: the `through` of an ack. It starts
// from what the gateway says it has had acknowledged (Batch.Committed) and
// grows as contiguous batches are stored. It is memory only; after a restart
// the gateways' Committed fields rebuild it.
type commits struct {
	mu      sync.Mutex
	streams map[string]*stream
}

type span struct{ first, last uint64 }

type stream struct {
	through uint64
	above   []span // stored ranges beyond through, sorted, disjoint
}

// maxSpans bounds the ranges remembered above the watermark per stream.
const maxSpans = 256

func newCommits() *commits { return &commits{streams: map[string]*stream{}} }

// add records that first..last of the stream is stored, given that the
// gateway holds acks through committed, and returns the new watermark.
func (c *commits) add(gw, streamID string, committed, first, last uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := gw + "\x00" + streamID
	s, ok := c.streams[key]
	if !ok {
		s = &stream{}
		c.streams[key] = s
	}
	s.through = max(s.through, committed)
	if last > s.through {
		s.above = append(s.above, span{max(first, s.through+1), last})
		sort.Slice(s.above, func(i, j int) bool { return s.above[i].first < s.above[j].first })
	}
	// Absorb every span that now touches the watermark.
	n := 0
	for _, sp := range s.above {
		if sp.first <= s.through+1 {
			s.through = max(s.through, sp.last)
			continue
		}
		s.above[n] = sp
		n++
	}
	s.above = s.above[:n]
	if len(s.above) > maxSpans {
		s.above = s.above[len(s.above)-maxSpans:]
	}
	return s.through
}
