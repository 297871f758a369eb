package trend

// median returns the median of a (the mean of the two middle values when
// len(a) is even), reordering a. a must not be empty or hold NaN.
func median(a []float64) float64 {
	k := len(a) / 2
	hi := selectK(a, k)
	if len(a)%2 == 1 {
		return hi
	}
	// selectK leaves a[:k] ≤ a[k]: the lower middle is their maximum.
	lo := a[0]
	for _, x := range a[1:k] {
		lo = max(lo, x)
	}
	return lo/2 + hi/2 // no overflow for huge values
}

// selectK reorders a so that a[k] is the value a sorted copy would have
// there, with a[:k] ≤ a[k] ≤ a[k+1:], and returns it: Hoare's selection
// (FIND) with a median-of-three pivot, expected linear time, no
// allocation. Runs of equal values split evenly, so ties (common in
// pairwise slopes) do not make it quadratic.
func selectK(a []float64, k int) float64 {
	lo, hi := 0, len(a)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if a[mid] < a[lo] {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if a[hi] < a[lo] {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[hi] < a[mid] {
			a[hi], a[mid] = a[mid], a[hi]
		}
		p := a[mid]
		i, j := lo, hi
		for i <= j {
			for a[i] < p {
				i++
			}
			for p < a[j] {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		// Now a[lo..j] ≤ p, a[j+1..i-1] = p, a[i..hi] ≥ p.
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return a[k]
		}
	}
	return a[k]
}
