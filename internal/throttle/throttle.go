// Package throttle lets one log line per key through per period and counts
// the ones it held back, so a misbehaving peer cannot flood the log.
package throttle

import (
	"sync"
	"time"
)

// maxKeys bounds the memory a stream of new keys (client names, reasons)
// can take; past it the throttle forgets and starts again.
const maxKeys = 10_000

// Throttle is safe for concurrent use.
type Throttle struct {
	period time.Duration
	mu     sync.Mutex
	last   map[string]time.Time
	held   map[string]int
}

// New returns a throttle letting one line per key through per period.
func New(period time.Duration) *Throttle {
	return &Throttle{period: period, last: map[string]time.Time{}, held: map[string]int{}}
}

// Allow reports whether to log for key now, and how many lines for it were
// held back since the last one let through.
func (t *Throttle) Allow(key string) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if last, ok := t.last[key]; ok && now.Sub(last) < t.period {
		t.held[key]++
		return false, 0
	}
	if len(t.last) >= maxKeys {
		clear(t.last)
		clear(t.held)
	}
	n := t.held[key]
	t.last[key] = now
	delete(t.held, key)
	return true, n
}
