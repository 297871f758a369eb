package trend

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// t0 is on a bucket boundary for every whole-minute width.
var t0 = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// feed adds a reading every step from t0+from to t0+to inclusive, valued
// f(hours since t0), and returns t0+to.
func feed(w *Window, from, to, step time.Duration, f func(h float64) float64) time.Time {
	for d := from; d <= to; d += step {
		w.Add(t0.Add(d), f(d.Hours()))
	}
	return t0.Add(to)
}

func newWindow(t *testing.T, span time.Duration, b int) *Window {
	t.Helper()
	w, err := NewWindow(span, b)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestNewWindow(t *testing.T) {
	cases := []struct {
		span    time.Duration
		buckets int
		width   time.Duration
		bad     bool
	}{
		{6 * time.Hour, 36, 10 * time.Minute, false},
		{6 * time.Hour, 48, 7*time.Minute + 30*time.Second, false},
		{time.Hour, 7, time.Hour / 7, false}, // rounded down to a nanosecond
		{6 * time.Hour, 1, 0, true},
		{6 * time.Hour, MaxBuckets + 1, 0, true},
		{30 * time.Second, 36, 0, true}, // width below 1s
	}
	for _, c := range cases {
		w, err := NewWindow(c.span, c.buckets)
		if (err != nil) != c.bad {
			t.Errorf("NewWindow(%v, %d): unexpected error %v", c.span, c.buckets, err)
			continue
		}
		if !c.bad && (w.Width != c.width || w.Max != c.buckets) {
			t.Errorf("NewWindow(%v, %d): got width %v max %d", c.span, c.buckets, w.Width, w.Max)
		}
	}
}

func TestAddClosesAndDrops(t *testing.T) {
	w := newWindow(t, time.Hour, 6) // 10-minute buckets
	steps := []struct {
		at     time.Duration
		closed bool
		n      int // buckets after the reading
	}{
		{0, false, 1},
		{9 * time.Minute, false, 1},
		{10 * time.Minute, true, 2},
		{59 * time.Minute, true, 3}, // buckets 0, 1, 5
		{60 * time.Minute, true, 3}, // bucket 6 opens, bucket 0 falls out
		{3 * time.Hour, true, 1},    // a gap longer than the window: all closed buckets fall out
		{3*time.Hour + time.Minute, false, 1},
	}
	for _, s := range steps {
		if got := w.Add(t0.Add(s.at), 1); got != s.closed || len(w.Buckets) != s.n {
			t.Fatalf("at %v: got closed %v, %d buckets; want %v, %d", s.at, got, len(w.Buckets), s.closed, s.n)
		}
		if len(w.Buckets) > w.Max {
			t.Fatalf("at %v: %d buckets, more than %d", s.at, len(w.Buckets), w.Max)
		}
	}
}

// TestGapAndLate: a gap of five empty buckets leaves them absent and the
// points at their true times; late readings go into their bucket, fill a
// gap, or are ignored when older than the window.
func TestGapAndLate(t *testing.T) {
	w := newWindow(t, 6*time.Hour, 36)
	line := func(h float64) float64 { return 20 + 2*h }
	feed(w, 0, 59*time.Minute, 3*time.Minute, line) // buckets 0…5
	// Nothing from 1h to 1h50m: buckets 6…10 are empty.
	now := feed(w, 111*time.Minute, 3*time.Hour, 3*time.Minute, line) // buckets 11…18, 18 open
	var idx []int64
	for _, b := range w.Buckets {
		idx = append(idx, b.I-w.Buckets[0].I)
	}
	want := []int64{0, 1, 2, 3, 4, 5, 11, 12, 13, 14, 15, 16, 17, 18}
	if !reflect.DeepEqual(idx, want) {
		t.Fatalf("unexpected buckets; got %v; want %v", idx, want)
	}
	// Each point lies on the line at its readings' mean time (bucket 11
	// holds 111, 114 and 117 min: mean 114 min, not the centre 115).
	for _, p := range w.Points(nil) {
		if got, want := p.V, line(p.T.Sub(t0).Hours()); math.Abs(got-want) > 1e-9 {
			t.Errorf("point at %v: got %v; want %v (its time must be its readings' mean time)", p.T.Sub(t0), got, want)
		}
	}
	if got := w.Points(nil)[6].T; !got.Equal(t0.Add(114 * time.Minute)) {
		t.Errorf("bucket 11's time: got %v; want 114m", got.Sub(t0))
	}
	fit, ok := w.Fit(5)
	if !ok || math.Abs(fit.Slope-2) > 1e-9 {
		t.Fatalf("fit across the gap: got %+v, %v; want slope 2", fit, ok)
	}
	if d, ok := fit.Crossing(">=", 30, now); !ok || d.Round(time.Second) != 2*time.Hour {
		t.Errorf("crossing: got %v, %v; want 2h", d, ok)
	}

	closed := w.Closed()
	// Late, into the open bucket (before the newest reading): added.
	if w.Add(now.Add(-time.Second), line(3)) {
		t.Error("a reading in the open bucket closed one")
	}
	// Late, into a present closed bucket (bucket 3): added to it.
	b3 := w.Buckets[3]
	w.Add(t0.Add(31*time.Minute), 99)
	if got := w.Buckets[3]; got.N != b3.N+1 || got.Sum != b3.Sum+99 {
		t.Errorf("late reading into bucket 3: got %+v; was %+v", got, b3)
	}
	// Late, into the gap (bucket 7): a new bucket in place.
	if w.Add(t0.Add(75*time.Minute), line(1.25)) {
		t.Error("a late reading closed a bucket")
	}
	if w.Closed() != closed+1 || w.Buckets[6].I-w.Buckets[0].I != 7 || w.Buckets[6].N != 1 {
		t.Errorf("late reading into the gap: got %d closed, bucket 6 %+v", w.Closed(), w.Buckets[6])
	}
	// Older than the window (36 buckets before the open one): ignored.
	if w.Add(now.Add(-6*time.Hour-time.Minute), 1); w.Ignored != 1 {
		t.Errorf("unexpected Ignored; got %d; want 1", w.Ignored)
	}
	// Not finite, or out of range: ignored.
	w.Add(now, math.NaN())
	w.Add(now, math.Inf(-1))
	w.Add(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), 1)
	w.Add(time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC), 1)
	if w.Ignored != 5 {
		t.Errorf("unexpected Ignored; got %d; want 5", w.Ignored)
	}
	for i := 1; i < len(w.Buckets); i++ {
		if w.Buckets[i].I <= w.Buckets[i-1].I {
			t.Fatalf("buckets out of order: %v", w.Buckets)
		}
	}
}

func TestRangeConstants(t *testing.T) {
	if got := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Unix(); got != minUnix {
		t.Errorf("unexpected minUnix; got %d; want %d", minUnix, got)
	}
	if got := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Unix(); got != maxUnix {
		t.Errorf("unexpected maxUnix; got %d; want %d", maxUnix, got)
	}
}

func TestNegativeTimes(t *testing.T) {
	// Before 1970 the bucket index must still round down.
	w := newWindow(t, time.Hour, 6)
	at := time.Date(1969, 12, 31, 23, 55, 0, 0, time.UTC)
	w.Add(at, 1)
	if got := w.Buckets[0].I; got != -1 {
		t.Errorf("unexpected index; got %d; want -1", got)
	}
	if got := w.Buckets[0].Off; got != 300 {
		t.Errorf("unexpected offset; got %v; want 300", got)
	}
}

func TestWindowJSON(t *testing.T) {
	w := newWindow(t, 6*time.Hour, 36)
	feed(w, 0, 3*time.Hour, 7*time.Minute, func(h float64) float64 { return 7.25 - 0.3*h })
	w.Add(t0, math.NaN()) // Ignored is kept too
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{`"w":`, `"max":`, `"b":`, `"i":`, `"n":`, `"s":`, `"o":`, `"x":`} {
		if !strings.Contains(string(b), tag) {
			t.Errorf("JSON %s lacks %s", b, tag)
		}
	}
	var back Window
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*w, back) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", back, *w)
	}
	// Both continue alike.
	for _, x := range []*Window{w, &back} {
		feed(x, 3*time.Hour, 5*time.Hour, 7*time.Minute, func(h float64) float64 { return 7.25 - 0.3*h })
	}
	f1, ok1 := w.Fit(10)
	f2, ok2 := back.Fit(10)
	if !reflect.DeepEqual(f1, f2) || ok1 != ok2 || !ok1 {
		t.Errorf("fits differ after the round trip: %+v %v; %+v %v", f1, ok1, f2, ok2)
	}
}

func TestKeepNewest(t *testing.T) {
	w, err := NewWindow(time.Hour, 6)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 6; i++ {
		w.Add(t0.Add(time.Duration(i)*10*time.Minute), float64(i))
	}
	w.KeepNewest(2)
	var got []float64
	for _, p := range w.Points(nil) {
		got = append(got, p.V)
	}
	if len(got) != 2 || got[0] != 3 || got[1] != 4 || len(w.Buckets) != 3 {
		t.Fatalf("closed %v, %d buckets; want closed [3 4] and the open one", got, len(w.Buckets))
	}
	w.KeepNewest(5) // fewer than asked: nothing to drop
	if w.Closed() != 2 {
		t.Fatalf("closed %d after keeping more than there are", w.Closed())
	}
}
