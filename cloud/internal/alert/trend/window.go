package trend

import (
	"errors"
	"math"
	"time"
)

// MaxBuckets bounds a Window's B: memory, and Fit's O(B²) pairs
// (32,640 at 256).
const MaxBuckets = 256

// Readings outside [1900, 2200) are ignored: their Unix time in
// nanoseconds, and bucket arithmetic on it, stay far from overflow.
const (
	minUnix = -2208988800 // 1900-01-01T00:00:00Z
	maxUnix = 7258118400  // 2200-01-01T00:00:00Z
)

// Bucket holds the readings whose time fell in [I·Width, (I+1)·Width)
// since the Unix epoch.
type Bucket struct {
	I   int64   `json:"i"` // index: Unix nanoseconds / Width, rounded down
	N   int     `json:"n"` // readings, at least 1
	Sum float64 `json:"s"` // sum of the values
	Off float64 `json:"o"` // sum of the readings' seconds since the bucket's start
}

// Mean is the mean of the bucket's values.
func (b Bucket) Mean() float64 { return b.Sum / float64(b.N) }

// add adds one reading, or reports false when the sum would overflow.
func (b *Bucket) add(v, off float64) bool {
	s := b.Sum + v
	if math.IsInf(s, 0) {
		return false
	}
	b.N++
	b.Sum = s
	b.Off += off
	return true
}

// Window keeps the readings of one series as at most Max buckets of equal
// Width, aligned to the Unix epoch, so bucket boundaries do not depend on
// the first reading and a replay builds the same buckets.
//
// The bucket holding the newest reading's time is open; the others are
// closed, and only closed buckets are fitted. The window covers the Max
// bucket widths that end with the open bucket: a bucket Max or more
// positions before it is dropped. Buckets without readings are absent,
// so a gap simply leaves fewer points, each at its true time.
//
// Each bucket's time is the mean time of its readings, not its centre: the
// mean value of readings on a line is the line's value at their mean
// time, so a bucket filled only in part (a gap's edge, a device whose
// interval does not divide the width) still sits on the line.
//
// The exported fields are the state, persisted as JSON; a Window decoded
// from JSON must be one this package wrote. A Window is not safe for
// concurrent use.
type Window struct {
	Width   time.Duration `json:"w"`
	Max     int           `json:"max"`
	Buckets []Bucket      `json:"b"` // ascending I, the open bucket last
	// Ignored counts readings not added: older than the window, not
	// finite, outside the years 1900–2199, or overflowing a bucket's sum.
	Ignored int64 `json:"x,omitempty"`
}

// NewWindow returns an empty window of buckets buckets over span (e.g.
// 6 h as 36). The width is span/buckets, rounded down to a nanosecond,
// and must be at least a second; buckets must be within 2…MaxBuckets.
func NewWindow(span time.Duration, buckets int) (*Window, error) {
	if buckets < 2 || buckets > MaxBuckets {
		return nil, errors.New("trend: buckets must be between 2 and 256")
	}
	w := span / time.Duration(buckets)
	if w < time.Second {
		return nil, errors.New("trend: bucket width (span / buckets) below 1s")
	}
	return &Window{Width: w, Max: buckets, Buckets: make([]Bucket, 0, buckets)}, nil
}

// Span is the time the window covers: Max × Width.
func (w *Window) Span() time.Duration { return w.Width * time.Duration(w.Max) }

// Closed is the number of closed buckets, the points Fit can use.
func (w *Window) Closed() int { return max(0, len(w.Buckets)-1) }

// Add adds the reading v taken at t and reports whether a bucket closed:
// t fell into a later bucket than the newest so far (even when the
// closed bucket then fell out of the window, as after a long gap; the
// caller should fit again either way).
//
// A reading older than the open bucket goes into its own bucket if that
// is still in the window (a bucket is created when the reading fills a
// gap); a reading older than the window, a value that is not finite, or a
// time outside 1900–2199 is ignored and counted in Ignored. A late
// reading changes a closed bucket without reporting it: the next fit
// sees it.
func (w *Window) Add(t time.Time, v float64) (closed bool) {
	if w.Width <= 0 || w.Max <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		w.Ignored++
		return false
	}
	if s := t.Unix(); s < minUnix || s >= maxUnix {
		w.Ignored++
		return false
	}
	ns, width := t.UnixNano(), int64(w.Width)
	i := floorDiv(ns, width)
	off := float64(ns-i*width) / 1e9
	n := len(w.Buckets)
	if n == 0 || i > w.Buckets[n-1].I {
		w.dropThrough(i - int64(w.Max))
		w.Buckets = append(w.Buckets, Bucket{I: i, N: 1, Sum: v, Off: off})
		return n > 0
	}
	if i <= w.Buckets[n-1].I-int64(w.Max) {
		w.Ignored++ // older than the window
		return false
	}
	k := w.search(i)
	if k < len(w.Buckets) && w.Buckets[k].I == i {
		if !w.Buckets[k].add(v, off) {
			w.Ignored++
		}
		return false
	}
	// A late reading in a gap: insert its bucket. Indices within the
	// window are distinct, so there are still at most Max buckets.
	w.Buckets = append(w.Buckets, Bucket{})
	copy(w.Buckets[k+1:], w.Buckets[k:])
	w.Buckets[k] = Bucket{I: i, N: 1, Sum: v, Off: off}
	return false
}

// search returns the position of the first bucket with index ≥ i,
// looking from the newest (late readings are usually recent).
func (w *Window) search(i int64) int {
	k := len(w.Buckets)
	for k > 0 && w.Buckets[k-1].I >= i {
		k--
	}
	return k
}

// dropThrough removes the buckets with index ≤ last, keeping the slice's
// storage.
func (w *Window) dropThrough(last int64) {
	k := 0
	for k < len(w.Buckets) && w.Buckets[k].I <= last {
		k++
	}
	if k > 0 {
		w.Buckets = append(w.Buckets[:0], w.Buckets[k:]...)
	}
}

// KeepNewest drops every closed bucket but the newest n, keeping the open
// one: the trend starts afresh from there. A caller does this when the
// series has turned (Fit.Departed to the safe side), so that the old line,
// which a robust fit keeps following for a while, cannot forecast again;
// a new trend must build on what came after the turn.
func (w *Window) KeepNewest(n int) {
	if c := w.Closed(); c > n && n >= 0 {
		w.Buckets = append(w.Buckets[:0], w.Buckets[c-n:]...)
	}
}

// Point is a bucket as Fit sees it: the mean time and mean value of its
// readings, and how many there were.
type Point struct {
	T time.Time
	V float64
	N int
}

// Points appends the closed buckets, oldest first, to dst.
func (w *Window) Points(dst []Point) []Point {
	for _, b := range w.Buckets[:w.Closed()] {
		dst = append(dst, Point{T: w.at(b), V: b.Mean(), N: b.N})
	}
	return dst
}

// at is the mean time of b's readings.
func (w *Window) at(b Bucket) time.Time {
	return time.Unix(0, b.I*int64(w.Width)+int64(math.Round(b.Off/float64(b.N)*1e9)))
}

// floorDiv is a/b rounded toward minus infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
