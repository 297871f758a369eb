package telemetry

import (
	"slices"
)

// The time column of a compact batch (docs/wire.md, "Codec 5"):
//
//	uvarint  nd, the runs of equal consecutive times (1 … readings)
//	         if nd < readings: an integer column of nd−1 run lengths − 1
//	                           (the last run takes the rest)
//	5 bits   e: times are counted in units of 10^e ns from the context's epoch
//	varint   v0, the first time in units
//	         if nd ≥ 2:
//	uvarint  P: 0 = delta mode, else grid mode with period P (1 … nd)
//	varint   D, the step
//	         if 0 < P < nd: varint I, the interval between periods
//	         an integer column of nd−1 residuals
//
// Delta mode: v[j] = v[j−1] + D + r[j]. Grid mode:
// v[j] = v0 + (j mod P)·D + (j div P)·I + r[j]. A time is epoch + v·10^e.
// All arithmetic wraps at 64 bits, so every time survives exactly.

// pow10i holds the powers of ten up to 10^18 as integers.
var pow10i = func() (p [MaxExp + 1]int64) {
	p[0] = 1
	for i := 1; i <= MaxExp; i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// timeCol writes ts (Unix ns). period, if between 1 and the number of runs,
// is a period (in runs) worth trying, e.g. the number of series polled in
// turn.
func (w *bitWriter) timeCol(ts []int64, epoch int64, period int) {
	var d []int64
	var lens []int64
	for i, t := range ts {
		if i > 0 && t == ts[i-1] {
			lens[len(lens)-1]++
			continue
		}
		d = append(d, t)
		lens = append(lens, 0)
	}
	w.uvarint(uint64(len(d)))
	if len(d) < len(ts) {
		w.intCol(lens[:len(lens)-1])
	}
	e := timeUnit(d, epoch)
	v := make([]int64, len(d))
	for j, t := range d {
		v[j] = (t - epoch) / pow10i[e] // exact: e > 0 only when nothing overflows
	}
	w.write(uint64(e), 5)
	w.varint(v[0])
	if len(v) == 1 {
		return
	}
	best := bitWriter{}
	try := func(p int, dd, ii int64) {
		var c bitWriter
		c.uvarint(uint64(p))
		c.varint(dd)
		if p > 0 && p < len(v) {
			c.varint(ii)
		}
		c.intCol(timeResiduals(v, p, dd, ii))
		if best.out == nil || c.bitLen() < best.bitLen() {
			best = c
		}
	}
	steps := make([]int64, len(v)-1)
	for j := 1; j < len(v); j++ {
		steps[j-1] = v[j] - v[j-1]
	}
	try(0, median(steps), 0)
	dd, _ := fitGrid(v, len(v), median(steps), 0)
	try(len(v), dd, 0)
	if period >= 1 && period < len(v) {
		dd, ii := fitGrid(v, period, median(steps), v[period]-v[0])
		try(period, dd, ii)
	}
	w.append(&best)
}

// timeUnit is the largest e ≤ 18 such that every t − epoch is a multiple of
// 10^e, or 0 if any t − epoch overflows.
func timeUnit(ts []int64, epoch int64) int {
	for _, t := range ts {
		if diff := t - epoch; (epoch > 0 && diff > t) || (epoch < 0 && diff < t) {
			return 0
		}
	}
	e := MaxExp
	for _, t := range ts {
		for e > 0 && (t-epoch)%pow10i[e] != 0 {
			e--
		}
	}
	return e
}

func timeResiduals(v []int64, p int, dd, ii int64) []int64 {
	r := make([]int64, len(v)-1)
	for j := 1; j < len(v); j++ {
		if p == 0 {
			r[j-1] = v[j] - v[j-1] - dd
		} else {
			r[j-1] = v[j] - v[0] - int64(j%p)*dd - int64(j/p)*ii
		}
	}
	return r
}

// fitGrid chooses D and I that make the grid residuals' span (the bits per
// residual) small: the span is convex in each, so a ternary search on one
// then the other, then the first again, finds it.
func fitGrid(v []int64, p int, d0, i0 int64) (int64, int64) {
	span := func(dd, ii int64) uint64 {
		lo, hi := int64(0), int64(0)
		for j := 1; j < len(v); j++ {
			r := v[j] - v[0] - int64(j%p)*dd - int64(j/p)*ii
			lo, hi = min(lo, r), max(hi, r)
		}
		return uint64(hi) - uint64(lo)
	}
	var within, across []int64
	for j := 1; j < len(v); j++ {
		if j%p != 0 {
			within = append(within, v[j]-v[j-1])
		}
		if j >= p {
			across = append(across, v[j]-v[j-p])
		}
	}
	dd, ii := d0, i0
	for round := 0; round < 3; round++ {
		if round != 1 && len(within) > 0 {
			dd = ternary(slices.Min(within), slices.Max(within), func(x int64) uint64 { return span(x, ii) })
		}
		if round == 1 && len(across) > 0 {
			ii = ternary(slices.Min(across), slices.Max(across), func(x int64) uint64 { return span(dd, x) })
		}
	}
	return dd, ii
}

// ternary returns an x in lo…hi minimizing the convex f.
func ternary(lo, hi int64, f func(int64) uint64) int64 {
	for uint64(hi)-uint64(lo) > 2 {
		third := int64((uint64(hi) - uint64(lo)) / 3)
		if m1, m2 := lo+third, hi-third; f(m1) <= f(m2) {
			hi = m2
		} else {
			lo = m1
		}
	}
	best := lo
	for x := lo + 1; x <= hi && x > lo; x++ {
		if f(x) < f(best) {
			best = x
		}
	}
	return best
}

// timeCol reads n times.
func (r *bitReader) timeCol(n int, epoch int64) []int64 {
	nd := r.uvarint("time runs")
	if r.err == nil && (nd == 0 || nd > uint64(n)) {
		r.err = malformed("%d time runs for %d readings", nd, n)
	}
	if r.err != nil {
		return nil
	}
	lens := make([]int64, nd)
	if int(nd) < n {
		explicit := r.intCol(int(nd)-1, "time run lengths")
		sum := int64(0)
		for j, l := range explicit {
			if l < 0 || l >= int64(n) || sum+l+1 >= int64(n) {
				r.err = malformed("time run %d: length %d does not fit %d readings", j, l+1, n)
				return nil
			}
			lens[j] = l
			sum += l + 1
		}
		lens[nd-1] = int64(n) - sum - 1
	}
	e := r.read(5, "time unit")
	v0 := r.varint("first time")
	if r.err == nil && e > MaxExp {
		r.err = malformed("time unit 10^%d ns is over 10^%d", e, MaxExp)
	}
	v := []int64{v0}
	if nd >= 2 && r.err == nil {
		p := r.uvarint("time period")
		dd := r.varint("time step")
		var ii int64
		if p > 0 && p < nd {
			ii = r.varint("time interval")
		}
		if r.err == nil && p > nd {
			r.err = malformed("time period %d is over %d runs", p, nd)
		}
		res := r.intCol(int(nd)-1, "time residuals")
		if r.err != nil {
			return nil
		}
		v = slices.Grow(v, int(nd)-1)
		for j := 1; j < int(nd); j++ {
			if p == 0 {
				v = append(v, v[j-1]+dd+res[j-1])
			} else {
				v = append(v, v0+int64(j%int(p))*dd+int64(j/int(p))*ii+res[j-1])
			}
		}
	}
	if r.err != nil {
		return nil
	}
	ts := make([]int64, 0, n)
	for j, x := range v {
		t := epoch + x*pow10i[e]
		for k := int64(0); k <= lens[j]; k++ {
			ts = append(ts, t)
		}
	}
	return ts
}
