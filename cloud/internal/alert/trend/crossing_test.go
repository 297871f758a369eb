package trend

import (
	"math"
	"testing"
	"time"
)

func TestCrossing(t *testing.T) {
	// Falling 2 per hour from 10 at t0.
	down := Fit{Origin: t0, Intercept: 10, Slope: -2}
	up := Fit{Origin: t0, Intercept: 10, Slope: 0.5}
	flat := Fit{Origin: t0, Intercept: 10}
	turned := down
	turned.Departed = 1 // the newest buckets lie above the line
	sank := up
	sank.Departed = -1 // below a rising line
	soared := up
	soared.Departed = 1
	fell := down
	fell.Departed = -1
	h := time.Hour
	cases := []struct {
		name   string
		f      Fit
		op     string
		target float64
		now    time.Duration
		want   time.Duration
		ok     bool
	}{
		{"falling to 6", down, "<=", 6, 0, 2 * h, true},
		{"falling below 6", down, "<", 6, 0, 2 * h, true},
		{"an hour on", down, "<=", 6, h, h, true},
		{"fitted value at target", down, "<=", 10, 0, 0, true},
		{"strictly below the value now", down, "<", 10, 0, 0, true},
		{"past it", down, "<=", 6, 3 * h, 0, true},
		{"moving away", down, ">=", 12, 0, 0, false},
		{"moving away, strict", down, ">", 12, 0, 0, false},
		{"rising to 11", up, ">", 11, 0, 2 * h, true},
		{"rising to 11, inclusive", up, ">=", 11, 30 * time.Minute, 90 * time.Minute, true},
		{"before the origin", up, ">=", 11, -h, 3 * h, true},
		{"rising, low hazard", up, "<", 5, 0, 0, false},
		{"flat", flat, "<=", 6, 0, 0, false},
		{"flat, high", flat, ">=", 12, 0, 0, false},
		{"flat, already", flat, "<=", 10, 0, 0, true},
		{"turned to the safe side", turned, "<=", 6, 0, 0, false},
		{"turned, even past it", turned, "<=", 6, 3 * h, 0, false},
		{"rising, turned to the safe side", sank, ">=", 11, 0, 0, false},
		{"rising, departed toward the hazard", soared, ">=", 11, 0, 2 * h, true},
		{"falling, departed toward the hazard", fell, "<=", 6, 0, 2 * h, true},
		{"unknown op", down, "==", 6, 0, 0, false},
		{"too far for a Duration", Fit{Origin: t0, Intercept: 10, Slope: -1e-12}, "<", -1e6, 0, math.MaxInt64, true},
	}
	for _, c := range cases {
		got, ok := c.f.Crossing(c.op, c.target, t0.Add(c.now))
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestAt(t *testing.T) {
	f := Fit{Origin: t0, Intercept: 7.5, Slope: -0.3}
	if got := f.At(t0.Add(90 * time.Minute)); math.Abs(got-7.05) > 1e-12 {
		t.Errorf("unexpected value; got %v; want 7.05", got)
	}
}
