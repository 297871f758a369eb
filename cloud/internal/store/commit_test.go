package store

import (
	"math/rand/v2"
	"testing"
)

// TestCommit checks With and Covers against a plain set over random
// batches, acknowledgements and round trips through String/ParseCommit.
func TestCommit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 300; round++ {
		var c Commit
		set := map[uint64]bool{}
		known := uint64(0)
		for op := 0; op < 30; op++ {
			first := uint64(1 + rng.IntN(300))
			last := first + uint64(rng.IntN(20))
			if rng.IntN(5) == 0 {
				known = max(known, uint64(rng.IntN(150)))
			}
			c = c.With(known, first, last)
			for s := first; s <= last; s++ {
				set[s] = true
			}
			for s := uint64(1); s <= known; s++ {
				set[s] = true
			}
			back, err := ParseCommit(c.Through, c.String())
			if err != nil || back.String() != c.String() || back.Through != c.Through {
				t.Fatalf("round trip of %+v: %+v, %v", c, back, err)
			}
			for s := uint64(1); s <= 330; s++ {
				if c.Covers(s, s) != set[s] {
					t.Fatalf("round %d: covers(%d) = %v, want %v; commit %+v", round, s, c.Covers(s, s), set[s], c)
				}
			}
			a, b := uint64(1+rng.IntN(300)), uint64(0)
			b = a + uint64(rng.IntN(30))
			want := true
			for s := a; s <= b; s++ {
				want = want && set[s]
			}
			if c.Covers(a, b) != want {
				t.Fatalf("round %d: covers(%d, %d) = %v, want %v; commit %+v", round, a, b, !want, want, c)
			}
		}
	}
	for _, bad := range []string{"5-3", "x-4", "1-", "2-3"} {
		if _, err := ParseCommit(2, bad); err == nil {
			t.Errorf("ParseCommit(2, %q) accepted", bad)
		}
	}
}

func TestCommitSteps(t *testing.T) {
	steps := []struct {
		known, first, last, through uint64
	}{
		{0, 1, 10, 10},
		{0, 21, 30, 10},  // gap 11..20
		{0, 11, 20, 30},  // gap closed
		{50, 61, 70, 50}, // the gateway says 1..50 are acked; 51..60 unknown
		{60, 61, 70, 70},
		{0, 1, 5, 70}, // an old replay does not lower the mark
	}
	var c Commit
	for i, s := range steps {
		if c = c.With(s.known, s.first, s.last); c.Through != s.through {
			t.Fatalf("step %d: through %d, want %d (%+v)", i, c.Through, s.through, c)
		}
	}
}
