package api

import (
	"testing"
	"time"
)

func TestAutoEvery(t *testing.T) {
	year := 365 * 24 * time.Hour
	for _, tc := range []struct {
		span   time.Duration
		points int
		want   time.Duration
	}{
		{time.Hour, 1000, 5 * time.Second},
		{6 * time.Hour, 1000, 30 * time.Second},
		{24 * time.Hour, 1000, 2 * time.Minute},
		{7 * 24 * time.Hour, 1000, 15 * time.Minute},
		{30 * 24 * time.Hour, 1000, time.Hour},
		{year, 1000, 12 * time.Hour},
		{year, 100, 4 * 24 * time.Hour},
		{time.Second, 1, time.Second},
	} {
		from := t0
		got := autoEvery(from, from.Add(tc.span), tc.points)
		if got != tc.want {
			t.Errorf("%v in %d points: %v, want %v", tc.span, tc.points, got, tc.want)
		}
		if n := buckets(from, from.Add(tc.span), got); n > int64(tc.points) {
			t.Errorf("%v in %d points: %v makes %d buckets", tc.span, tc.points, got, n)
		}
	}
}

// FuzzParseEvery: whatever every, points and range, parseEvery does not
// panic, refuses with a 400 naming the parameter, or gives a width of at
// least a second that, for auto, makes at most the points asked for.
func FuzzParseEvery(f *testing.F) {
	f.Add("auto", "", int64(0), int64(3600))
	f.Add("", "1000", int64(-86400), int64(365*86400))
	f.Add("5m", "", int64(0), int64(86400))
	f.Add("1s", "", int64(0), int64(7*86400))
	f.Add("auto", "1", int64(123), int64(5_000_000_000))
	f.Add("2562047h", "", int64(1), int64(2))
	f.Fuzz(func(t *testing.T, every, points string, fromS, toS int64) {
		// The range as parseTime gives them: 1970 … 2200, from before to.
		lo, hi := int64(0), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Unix()-1
		fromS, toS = lo+mod(fromS, hi-lo), lo+mod(toS, hi-lo)
		if fromS == toS {
			return
		}
		if fromS > toS {
			fromS, toS = toS, fromS
		}
		from, to := time.Unix(fromS, 0), time.Unix(toS, 0)
		d, err := parseEvery(every, points, from, to, maxBuckets)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Status != 400 || (e.Param != "every" && e.Param != "points") {
				t.Fatalf("%q %q: error %#v", every, points, err)
			}
			return
		}
		if d == 0 {
			if every != "" || points != "" {
				t.Fatalf("%q %q: no aggregation", every, points)
			}
			return
		}
		if d < time.Second {
			t.Fatalf("%q %q: width %v", every, points, d)
		}
		if n := buckets(from, to, d); n < 1 || n > maxBuckets {
			t.Fatalf("%q %q over %v … %v: %v makes %d buckets", every, points, from, to, d, n)
		}
	})
}

func mod(a, m int64) int64 {
	r := a % m
	if r < 0 {
		r += m
	}
	return r
}
