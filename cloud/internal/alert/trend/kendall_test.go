package trend

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestVarS checks the tie-corrected variance of S against hand-computed
// values of [n(n−1)(2n+5) − Σ t(t−1)(2t+5)] / 18:
//
//	1 2 3 4 5          n=5, no ties: 5·4·15/18 = 300/18 ≈ 16.667
//	1 2 2 3 3 3 4      7·6·19 = 798; ties 2·1·9 = 18, 3·2·11 = 66: 714/18
//	5 5 5 5            4·3·13 = 156, one group of 4: 156 − 156 = 0
//	1 2 1 2 … (20)     20·19·45 = 17100; two groups of 10: 2·10·9·25 =
//	                   4500; 12600/18 = 700
//	10 values, no ties 10·9·25/18 = 125
func TestVarS(t *testing.T) {
	alt := make([]float64, 20)
	for i := range alt {
		alt[i] = float64(1 + i%2)
	}
	cases := []struct {
		y    []float64
		want float64
	}{
		{[]float64{1, 2, 3, 4, 5}, 300.0 / 18},
		{[]float64{1, 2, 2, 3, 3, 3, 4}, 714.0 / 18},
		{[]float64{3, 3, 1, 2, 3, 4, 2}, 714.0 / 18}, // order does not matter
		{[]float64{5, 5, 5, 5}, 0},
		{alt, 700},
		{[]float64{3, 1, 4, 15, 9, 2, 6, 5, 35, 8}, 125},
	}
	for _, c := range cases {
		scratch := make([]float64, len(c.y))
		if got := varS(c.y, scratch); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("varS(%v): got %v; want %v", c.y, got, c.want)
		}
	}
}

func TestZScore(t *testing.T) {
	cases := []struct {
		s    int
		v, z float64
	}{
		{10, 300.0 / 18, 9 / math.Sqrt(300.0/18)}, // 1…5 rising: Z ≈ 2.205, p ≈ 0.0275
		{-10, 300.0 / 18, -9 / math.Sqrt(300.0/18)},
		{0, 125, 0},
		{3, 0, 0}, // all tied: no variance
	}
	for _, c := range cases {
		if got := zScore(c.s, c.v); math.Abs(got-c.z) > 1e-12 {
			t.Errorf("zScore(%d, %v): got %v; want %v", c.s, c.v, got, c.z)
		}
	}
	if p := math.Erfc(math.Abs(zScore(10, 300.0/18)) / math.Sqrt2); math.Abs(p-0.0275) > 1e-4 {
		t.Errorf("unexpected p; got %v; want 0.0275", p)
	}
}

func TestMedian(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := 1; n < 120; n++ {
		for _, levels := range []int{2, 5, 1 << 30} { // heavy ties to none
			a := make([]float64, n)
			for i := range a {
				a[i] = float64(r.IntN(levels))
			}
			s := slices.Clone(a)
			slices.Sort(s)
			want := s[n/2]
			if n%2 == 0 {
				want = (s[n/2-1] + s[n/2]) / 2
			}
			if got := median(a); got != want {
				t.Fatalf("median of %v: got %v; want %v", s, got, want)
			}
			for _, k := range []int{0, n / 3, n - 1} {
				b := slices.Clone(a)
				if got := selectK(b, k); got != s[k] {
					t.Fatalf("selectK(%v, %d): got %v; want %v", a, k, got, s[k])
				}
				for i := range b {
					if (i < k && b[i] > b[k]) || (i > k && b[i] < b[k]) {
						t.Fatalf("selectK(%v, %d) left %v unpartitioned", a, k, b)
					}
				}
			}
		}
	}
}
