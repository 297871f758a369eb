package throttle

import (
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	th := New(time.Hour)
	if ok, n := th.Allow("a"); !ok || n != 0 {
		t.Fatalf("first line held: %v %d", ok, n)
	}
	for i := 0; i < 3; i++ {
		if ok, _ := th.Allow("a"); ok {
			t.Fatal("a second line within the period let through")
		}
	}
	if ok, _ := th.Allow("b"); !ok {
		t.Fatal("another key held")
	}
	th.last["a"] = time.Now().Add(-2 * time.Hour)
	if ok, n := th.Allow("a"); !ok || n != 3 {
		t.Fatalf("after the period: %v, held %d, want true, 3", ok, n)
	}
	for i := 0; i < maxKeys+5; i++ {
		th.Allow(time.Duration(i).String())
	}
	if len(th.last) > maxKeys {
		t.Fatalf("%d keys kept, more than %d", len(th.last), maxKeys)
	}
}
