package ingest

import (
	"sync"
	"time"
)

// throttle lets one log line per key through per period and counts the rest.
type throttle struct {
	period time.Duration
	mu     sync.Mutex
	last   map[string]time.Time
	held   map[string]int
}

func newThrottle(period time.Duration) *throttle {
	return &throttle{period: period, last: map[string]time.Time{}, held: map[string]int{}}
}

// allow reports whether to log now, and how many were suppressed before.
func (t *throttle) allow(key string) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if last, ok := t.last[key]; ok && now.Sub(last) < t.period {
		t.held[key]++
		return false, 0
	}
	n := t.held[key]
	t.last[key], t.held[key] = now, 0
	return true, n
}
