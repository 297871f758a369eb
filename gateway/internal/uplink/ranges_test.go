package uplink

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestRanges checks the acked set against a plain bitmap over random adds,
// lookups and trims.
func TestRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for round := 0; round < 200; round++ {
		var r ranges
		ref := make([]bool, 202)
		for op := 0; op < 40; op++ {
			switch rng.IntN(4) {
			case 0, 1:
				a := uint64(1 + rng.IntN(200))
				b := min(a+uint64(rng.IntN(10)), 200)
				r.add(a, b)
				for s := a; s <= b; s++ {
					ref[s] = true
				}
			case 2:
				trimmed := uint64(rng.IntN(200))
				r.trimBelow(trimmed)
				for s := uint64(0); s <= trimmed; s++ {
					ref[s] = false
				}
			}
			var n uint64
			for s := uint64(1); s <= 201; s++ {
				got, end := r.covered(s)
				if got != ref[s] {
					t.Fatalf("round %d: covered(%d) = %v, want %v (set %v)", round, s, got, ref[s], r)
				}
				if got && (end < s || !ref[end] || (end+1 <= 201 && ref[end+1])) {
					t.Fatalf("round %d: range of %d ends at %d (set %v)", round, s, end, r)
				}
				if ref[s] {
					n++
				}
			}
			if r.count() != n {
				t.Fatalf("round %d: count %d, want %d", round, r.count(), n)
			}
			for i := 1; i < len(r); i++ {
				if r[i].first <= r[i-1].last+1 {
					t.Fatalf("round %d: ranges not merged: %v", round, r)
				}
			}
		}
	}
}

func TestJittered(t *testing.T) {
	tests := []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{1, 0, 500 * time.Millisecond},
		{1, 0.998, 999 * time.Millisecond},
		{3, 0.5, 3 * time.Second},
		{10, 0, 30 * time.Second}, // capped at one minute
		{64, 0.999, 59970 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := jittered(tt.n, time.Minute, tt.r).Round(time.Millisecond); got != tt.want {
			t.Errorf("attempt %d, r %v: %v, want %v", tt.n, tt.r, got, tt.want)
		}
	}
}
