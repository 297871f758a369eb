package engine

import (
	"context"
	"sync"
	"testing"
	"time"
)

// savedStates is the Handoff of these tests: the latest state saved per
// gateway (natslink's key-value bucket in a cluster, tested there).
type savedStates struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *savedStates) Save(_ context.Context, gw string, state []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[gw] = append([]byte(nil), state...)
}

// TestHandoff: gateway gw1's alert moves from replica a to replica b in
// the middle of its `for: 10m`: b fires when the ten minutes are up (not
// ten minutes after the move), a says nothing once it no longer holds gw1,
// and the two together notify firing once and resolved once.
func TestHandoff(t *testing.T) {
	saved := &savedStates{m: map[string][]byte{}}
	var aHolds, bHolds bool
	a := newRig(t, doRule)
	a.e.o.Handoff = saved
	a.e.o.Serves = func(string) (bool, time.Time) { return aHolds, time.Time{} }
	aHolds = true
	for range 6 { // six minutes below 4 mg/L: pending
		a.live(time.Minute, 3)
		a.tick(0)
	}
	a.want()

	b := newRig(t, doRule)
	b.now = a.now
	b.e.o.Handoff = saved
	b.e.o.Serves = func(string) (bool, time.Time) { return bHolds, b.now }
	saved.mu.Lock()
	state := saved.m["gw1"]
	saved.mu.Unlock()
	if state == nil {
		t.Fatal("a saved no state for gw1")
	}
	aHolds = false
	if err := b.e.Take("gw1", state); err != nil {
		t.Fatal(err)
	}
	bHolds = true
	a.tick(time.Minute) // a lets go of gw1
	for range 5 {
		b.live(time.Minute, 3)
		b.tick(0)
		a.tick(time.Minute)
	}
	a.want()
	b.want("firing yellow")
	for range 3 {
		b.live(time.Minute, 6)
		b.tick(0)
	}
	b.want("firing yellow", "resolved yellow")
	a.want()
	for k := range a.e.series {
		if k.gw == "gw1" {
			t.Fatalf("a still keeps a series of gw1, which it does not hold: %+v", k)
		}
	}
}

func TestTakeRefusesGarbage(t *testing.T) {
	g := newRig(t, doRule)
	if err := g.e.Take("gw1", []byte("{not json")); err == nil {
		t.Fatal("garbage taken")
	}
	// A series that names another gateway is dropped, not taken.
	if err := g.e.Take("gw1", []byte(`[{"k":"pond_do\u001fgw2\u001fprobe\u001fdo","d":{}}]`)); err != nil {
		t.Fatal(err)
	}
	if len(g.e.series) != 0 {
		t.Fatalf("took %d series of another gateway", len(g.e.series))
	}
}
