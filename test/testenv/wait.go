package testenv

import (
	"testing"
	"time"
)

// Eventually polls cond every 20 ms until it holds, failing the test with
// what if it does not within limit. Tests wait for events with it; they
// never assert how long something took.
func Eventually(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting: %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
