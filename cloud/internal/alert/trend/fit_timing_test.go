package trend

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkFit fits a full window (B−1 closed buckets) of a noisy falling
// series with a reused Fitter, as the engine does when a bucket closes.
func BenchmarkFit(b *testing.B) {
	for _, nb := range []int{36, 48, 64} {
		b.Run(fmt.Sprintf("B=%d", nb), func(b *testing.B) {
			w, err := NewWindow(6*time.Hour, nb)
			if err != nil {
				b.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 1))
			feed(w, 0, 7*time.Hour, time.Minute, func(h float64) float64 { return falling(h) + r.NormFloat64()*0.2 })
			var f Fitter
			b.ReportAllocs()
			for b.Loop() {
				f.Fit(w, 10)
			}
		})
	}
}

// BenchmarkAdd adds in-order readings, one a minute, to a 48-bucket window.
func BenchmarkAdd(b *testing.B) {
	w, err := NewWindow(6*time.Hour, 48)
	if err != nil {
		b.Fatal(err)
	}
	at := t0
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Minute)
		w.Add(at, 1)
	}
}
