package uplink

import (
	"sync"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestDebounce steps the debounce through changes and publishes on a
// made-up clock: a change after a quiet spell is due at once; changes
// within 2 s of a state message wait for the 2 s and go out as one; a
// periodic state message carries the changes before it.
func TestDebounce(t *testing.T) {
	type step struct {
		at      time.Duration // since the start
		op      string        // "change", "publish" (any state message) or "check"
		due     bool          // check: a message is due
		wait    time.Duration // check: else how long until it is
		publish bool          // check: publish it when due
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"nothing changed", []step{
			{at: 0, op: "publish"},
			{at: time.Minute, op: "check"},
		}},
		{"a change after a quiet spell goes at once", []step{
			{at: 0, op: "publish"},
			{at: 10 * time.Second, op: "change"},
			{at: 10 * time.Second, op: "check", due: true, publish: true},
			{at: 10 * time.Second, op: "check"},
		}},
		{"a burst soon after a message is one message, 2 s after it", []step{
			{at: 0, op: "publish"},
			{at: 500 * time.Millisecond, op: "change"},
			{at: 500 * time.Millisecond, op: "check", wait: 1500 * time.Millisecond},
			{at: 600 * time.Millisecond, op: "change"},
			{at: 1900 * time.Millisecond, op: "change"},
			{at: 1900 * time.Millisecond, op: "check", wait: 100 * time.Millisecond},
			{at: 2 * time.Second, op: "check", due: true, publish: true},
			{at: 2 * time.Second, op: "check"},
			{at: 2500 * time.Millisecond, op: "change"},
			{at: 2500 * time.Millisecond, op: "check", wait: 1500 * time.Millisecond},
			{at: 5 * time.Second, op: "check", due: true, publish: true},
		}},
		{"a periodic message carries the pending change", []step{
			{at: 0, op: "publish"},
			{at: time.Second, op: "change"},
			{at: 1500 * time.Millisecond, op: "publish"},
			{at: 3 * time.Second, op: "check"},
		}},
	}
	t0 := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	for _, tc := range tests {
		d := debounce{every: 2 * time.Second}
		for i, s := range tc.steps {
			now := t0.Add(s.at)
			switch s.op {
			case "change":
				d.changed()
			case "publish":
				d.published(now)
			case "check":
				due, wait := d.due(now)
				if due != s.due || wait != s.wait {
					t.Fatalf("%s, step %d at %v: due %v, wait %v; want %v, %v", tc.name, i, s.at, due, wait, s.due, s.wait)
				}
				if due && s.publish {
					d.published(now)
				}
			}
		}
	}
}

// heldClock is a clock that moves only when the test moves it.
type heldClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *heldClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *heldClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestStateOnHealthChange runs the uplink on a real broker: the state
// says its heartbeat, and each burst of health changes is one state message,
// published without waiting for state_interval (an hour here) but at least
// the debounce after the message before it. The debounce's clock stands
// still during a burst and moves on by the debounce after it, so which
// changes fall within the debounce does not depend on how fast the burst
// or the broker's round trip is.
func TestStateOnHealthChange(t *testing.T) {
	m := testenv.StartMosquitto(t)
	c := newCloud(t, m.URL)
	clk := &heldClock{now: t0}
	r := startUplink(t, m.URL, func(u *config.Uplink) { u.StateInterval = time.Hour }, func(o *Options) { o.now = clk.Now })
	states := func() []telemetry.State {
		c.mu.Lock()
		defer c.mu.Unlock()
		return append([]telemetry.State(nil), c.states...)
	}
	testenv.Eventually(t, "online on connect", wait, func() bool { return len(states()) == 1 })
	if s := states()[0]; s.State != telemetry.StateOnline || time.Duration(s.Heartbeat) != time.Hour {
		t.Fatalf("state %+v; want online with a heartbeat of 1h", s)
	}
	for range 2 {
		n := len(states())
		for range 20 {
			r.up.StateChanged() // a burst: a whole bus failing
		}
		clk.add(StateDebounce) // the burst came within the debounce; now it is up
		testenv.Eventually(t, "state published on change", wait, func() bool { return len(states()) >= n+1 })
	}
	s := states()
	if len(s) != 3 {
		t.Fatalf("%d states", len(s))
	}
	// A message published on change comes at least the debounce after the
	// one before it.
	for i := 1; i < len(s); i++ {
		if gap := s[i].Time.Sub(s[i-1].Time); gap < StateDebounce {
			t.Errorf("states at %v and %v, %v apart; want at least %v", s[i-1].Time, s[i].Time, gap, StateDebounce)
		}
	}
	for _, st := range s {
		if st.State != telemetry.StateOnline || time.Duration(st.Heartbeat) != time.Hour {
			t.Errorf("state %+v", st)
		}
	}
}
