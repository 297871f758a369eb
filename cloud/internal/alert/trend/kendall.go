package trend

import (
	"math"
	"slices"
)

// varS is the variance of the Mann–Kendall S of y under no trend,
// corrected for ties (Kendall 1975):
// [n(n−1)(2n+5) − Σ t(t−1)(2t+5)] / 18 over the groups of t equal values.
// scratch must have len(y) elements; it is overwritten.
func varS(y, scratch []float64) float64 {
	c := scratch[:len(y)]
	copy(c, y)
	slices.Sort(c) // no allocation
	n := float64(len(c))
	v := n * (n - 1) * (2*n + 5)
	for i := 0; i < len(c); {
		j := i + 1
		for j < len(c) && c[j] == c[i] {
			j++
		}
		if g := float64(j - i); g > 1 {
			v -= g * (g - 1) * (2*g + 5)
		}
		i = j
	}
	return v / 18
}

// zScore is the continuity-corrected normal score of S.
func zScore(s int, varS float64) float64 {
	switch {
	case varS <= 0 || s == 0:
		return 0
	case s > 0:
		return float64(s-1) / math.Sqrt(varS)
	default:
		return float64(s+1) / math.Sqrt(varS)
	}
}
