package trend

import (
	"math"
	"sync"
	"time"
)

// DefaultAlpha is the significance level a Fitter uses when its Alpha is
// not set: the trend must have a two-sided p-value of at most 0.05.
const DefaultAlpha = 0.05

// MinPoints is the fewest closed buckets Fit accepts whatever the caller
// asks; with the default alpha a trend needs five to be significant at
// all, and ten or more for the p-value to mean much.
const MinPoints = 3

// RecentBuckets is how many of the newest closed buckets must all lie off
// the line, on one side, for a fit to count as departed.
const RecentBuckets = 3

// DefaultDeparture is the Fitter's departure tolerance in robust standard
// deviations of the residuals (1.4826·MAD each).
const DefaultDeparture = 3

// Reason says why a fit gives no forecast.
type Reason string

// Reasons for no forecast.
const (
	TooFew         Reason = "too few points"        // fewer closed buckets than asked
	NotSignificant Reason = "trend not significant" // Mann–Kendall p above alpha
	NotFinite      Reason = "not finite"            // values so large the line overflowed
)

// Fit is a Theil–Sen line through a window's closed buckets and the
// Mann–Kendall test of its trend. Times are hours from Origin.
type Fit struct {
	N      int       // points (closed buckets) fitted
	Origin time.Time // mean time of the newest closed bucket
	// Slope is the trend in the series' units per hour: the median of the
	// pairwise slopes.
	Slope float64
	// Intercept is the line's value at Origin: the median of
	// y_i − Slope·t_i.
	Intercept float64
	// MAD is the median absolute residual from the line (the residuals'
	// median is zero by the choice of intercept). 1.4826·MAD estimates the
	// noise's standard deviation when it is normal. A caller may refuse a
	// fit whose MAD is large against the distance to its target.
	MAD float64
	// S is the Mann–Kendall statistic, VarS its variance corrected for
	// ties, Z the continuity-corrected score and P the two-sided p-value
	// (normal approximation; rough below about ten points).
	S    int
	VarS float64
	Z    float64
	P    float64
	// Departed is +1 when the newest RecentBuckets closed buckets all lie above
	// the line by more than the Fitter's tolerance, −1 when all lie below,
	// 0 otherwise: the series has turned or stepped (DO recovering at
	// sunrise, soil moisture after irrigation) and the robust line, which
	// shrugs off up to about 29 % of the points as outliers, has not followed
	// yet. One spike cannot set it. Crossing answers false while the
	// series has departed to the safe side.
	Departed int
	// Recent is the residual nearest zero among the newest RecentBuckets
	// closed buckets when they all share a sign, else 0: how far the
	// newest data lie off the line.
	Recent float64
	// Reason is why the fit gives no forecast, empty when it gives one.
	Reason Reason
}

// At is the line's value at t.
func (f Fit) At(t time.Time) float64 {
	return f.Intercept + f.Slope*t.Sub(f.Origin).Hours()
}

// Fitter fits windows, keeping its scratch space between calls so that
// fitting allocates nothing once the space has grown to the largest
// window. The zero value is ready to use. A Fitter is not safe for
// concurrent use: keep one per goroutine (the engine: one, under its
// lock).
type Fitter struct {
	// Alpha is the significance level of the trend test; outside (0, 1]
	// it means DefaultAlpha.
	Alpha float64
	// Departure is how far, in robust standard deviations (1.4826·MAD),
	// each of the newest RecentBuckets closed buckets must lie off the
	// line for Fit.Departed; 0 means DefaultDeparture, negative turns the
	// check off. A floor of 1e-9 × the largest |value| keeps rounding on
	// an exact line from counting.
	Departure float64

	t, y, buf []float64
}

// fitters serve Window.Fit: scratch only, no state survives a call.
var fitters = sync.Pool{New: func() any { return new(Fitter) }}

// Fit fits w's closed buckets with a pooled Fitter at DefaultAlpha; see
// Fitter.Fit.
func (w *Window) Fit(minPoints int) (Fit, bool) {
	f := fitters.Get().(*Fitter)
	defer fitters.Put(f)
	return f.Fit(w, minPoints)
}

// Fit fits the closed buckets of w: the open bucket is left out, so the
// fit changes only when a bucket closes (or a late reading changes a
// closed one) and costs nothing between. It reports false, with the
// Reason set, when there are fewer than minPoints closed buckets (at
// least MinPoints), when the trend is not significant, or when the values
// overflow; the statistics computed so far are returned either way.
func (f *Fitter) Fit(w *Window, minPoints int) (Fit, bool) {
	n := w.Closed()
	fit := Fit{N: n}
	if n < max(minPoints, MinPoints) {
		fit.Reason = TooFew
		return fit, false
	}
	bs := w.Buckets[:n]
	last := bs[n-1]
	width := int64(w.Width)
	fit.Origin = w.at(last)
	lastOff := last.Off / float64(last.N)
	f.t, f.y = grow(f.t, n), grow(f.y, n)
	t, y := f.t, f.y
	for i, b := range bs {
		// Hours from Origin: whole buckets exactly, then the offsets.
		t[i] = float64((b.I-last.I)*width)/float64(time.Hour) + (b.Off/float64(b.N)-lastOff)/3600
		y[i] = b.Mean()
	}

	f.buf = grow(f.buf, max(n, n*(n-1)/2))
	fit.VarS = varS(y, f.buf[:n])

	// One pass over the pairs: the S statistic and the pairwise slopes.
	// Bucket mean times are strictly increasing (buckets are disjoint),
	// so every pair has a slope; dt > 0 guards against rounding anyway.
	slopes := f.buf[:0]
	s := 0
	for i := 0; i < n-1; i++ {
		ti, yi := t[i], y[i]
		for j := i + 1; j < n; j++ {
			dy := y[j] - yi
			if dy > 0 {
				s++
			} else if dy < 0 {
				s--
			}
			if dt := t[j] - ti; dt > 0 {
				slopes = append(slopes, dy/dt)
			}
		}
	}
	fit.S = s
	fit.Z = zScore(s, fit.VarS)
	fit.P = math.Erfc(math.Abs(fit.Z) / math.Sqrt2)

	if len(slopes) == 0 {
		fit.Reason = TooFew
		return fit, false
	}
	fit.Slope = median(slopes)
	r := f.buf[:n]
	for i := range r {
		r[i] = y[i] - fit.Slope*t[i]
	}
	fit.Intercept = median(r)
	for i := range r {
		r[i] = math.Abs(y[i] - fit.Slope*t[i] - fit.Intercept)
	}
	fit.MAD = median(r)
	if !finite(fit.Slope) || !finite(fit.Intercept) || !finite(fit.MAD) {
		fit.Slope, fit.Intercept, fit.MAD = 0, 0, 0
		fit.Reason = NotFinite
		return fit, false
	}
	f.departed(&fit, t, y)

	alpha := f.Alpha
	if !(alpha > 0 && alpha <= 1) {
		alpha = DefaultAlpha
	}
	if !(fit.P <= alpha) {
		fit.Reason = NotSignificant
		return fit, false
	}
	return fit, true
}

// departed sets fit.Departed and fit.Recent from the newest
// RecentBuckets points.
func (f *Fitter) departed(fit *Fit, t, y []float64) {
	k := f.Departure
	if k < 0 || len(y) < RecentBuckets {
		return
	}
	if k == 0 {
		k = DefaultDeparture
	}
	scale := 0.0
	for _, v := range y {
		scale = max(scale, math.Abs(v))
	}
	tol := k*1.4826*fit.MAD + 1e-9*scale
	var near float64
	for i := len(y) - RecentBuckets; i < len(y); i++ {
		r := y[i] - fit.Slope*t[i] - fit.Intercept
		switch {
		case r == 0 || (near != 0 && (r > 0) != (near > 0)):
			return // on the line, or on both sides
		case near == 0 || math.Abs(r) < math.Abs(near):
			near = r
		}
	}
	if !finite(near) {
		return
	}
	fit.Recent = near
	if math.Abs(near) > tol {
		fit.Departed = 1
		if near < 0 {
			fit.Departed = -1
		}
	}
}

func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
