package api

import (
	"strconv"
	"time"
)

// defaultPoints is how many buckets every=auto aims at without points=.
const defaultPoints = 1000

// niceSteps are the bucket widths every=auto chooses from: a chart's
// buckets start on the minute, the hour or the day. Past a day it takes
// whole days.
var niceSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 20 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour, 6 * time.Hour, 8 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// buckets is how many buckets of width every, on the epoch grid, [from, to)
// touches.
func buckets(from, to time.Time, every time.Duration) int64 {
	floor := func(t int64) int64 {
		q := t / int64(every)
		if t%int64(every) < 0 {
			q--
		}
		return q
	}
	return floor(to.UnixNano()-1) - floor(from.UnixNano()) + 1
}

// autoEvery is the narrowest nice width (or whole number of days) that
// cuts [from, to) into at most points buckets.
func autoEvery(from, to time.Time, points int) time.Duration {
	for _, s := range niceSteps {
		if buckets(from, to, s) <= int64(points) {
			return s
		}
	}
	days := int64(to.Sub(from)/(24*time.Hour))/int64(points) + 1
	for buckets(from, to, time.Duration(days)*24*time.Hour) > int64(points) {
		days++
	}
	return time.Duration(days) * 24 * time.Hour
}

// parseEvery reads the every= and points= parameters of a range [from, to):
// no every and no points is no aggregation (0); every=5m a width of at
// least a second; every=auto, or points= alone, the width autoEvery picks
// for points buckets (default defaultPoints). maxBuckets, when positive,
// bounds the buckets an explicit width may make.
func parseEvery(every, points string, from, to time.Time, maxBuckets int) (time.Duration, error) {
	n := defaultPoints
	if points != "" {
		if every != "" && every != "auto" {
			return 0, badParam("points", "goes with every=auto (or alone), not every=%s", every)
		}
		v, err := strconv.Atoi(points)
		if err != nil || v < 1 || v > 10_000 {
			return 0, badParam("points", "%q is not 1..10000", points)
		}
		n, every = v, "auto"
	}
	switch every {
	case "":
		return 0, nil
	case "auto":
		return autoEvery(from, to, n), nil
	}
	d, err := time.ParseDuration(every)
	if err != nil || d < time.Second {
		return 0, badParam("every", "%q is not auto or a duration of at least 1s, such as 5m", every)
	}
	if b := buckets(from, to, d); maxBuckets > 0 && b > int64(maxBuckets) {
		return 0, badParam("every", "%s over this range makes %d points, more than %d (every=auto picks a width)", every, b, maxBuckets)
	}
	return d, nil
}
