package engine

import (
	"math"
	"sort"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/standards"
)

// maxWindowPoints bounds one series' window; the oldest are forgotten.
const maxWindowPoints = 50_000

// window keeps the values of one series within a span, oldest first.
type window struct {
	P   []pt    `json:"p"`
	Sum float64 `json:"sum"`
}

type pt struct {
	T int64   `json:"t"` // Unix nanoseconds
	V float64 `json:"v"`
}

func (w *window) add(t time.Time, v float64, span time.Duration) {
	w.P = append(w.P, pt{t.UnixNano(), v})
	w.Sum += v
	cut := t.Add(-span).UnixNano()
	i := 0
	for i < len(w.P)-1 && (w.P[i].T <= cut || len(w.P)-i > maxWindowPoints) {
		w.Sum -= w.P[i].V
		i++
	}
	if i > 0 {
		w.P = append(w.P[:0], w.P[i:]...)
		if len(w.P) < 64 { // cancel rounding drift now and then
			w.Sum = 0
			for _, p := range w.P {
				w.Sum += p.V
			}
		}
	}
}

func (w *window) agg(kind string) float64 {
	switch kind {
	case "mean":
		return w.Sum / float64(len(w.P))
	case "min", "max":
		m := w.P[0].V
		for _, p := range w.P[1:] {
			if (kind == "min") == (p.V < m) {
				m = p.V
			}
		}
		return m
	}
	return w.P[len(w.P)-1].V
}

// change is a rate rule's measure: how far the median of the newest three
// values lies below the window's maximum (drop) or above its minimum (rise).
func (w *window) change(direction string) float64 {
	n := len(w.P)
	var buf [3]float64
	last := buf[:0]
	for i := max(0, n-3); i < n; i++ {
		last = append(last, w.P[i].V)
	}
	sort.Float64s(last)
	cur := last[len(last)/2]
	if len(last) == 2 {
		cur = (last[0] + last[1]) / 2
	}
	if direction == "drop" {
		return w.agg("max") - cur
	}
	return cur - w.agg("min")
}

// accumulator is the state of day-based accumulations and of counters.
type accumulator struct {
	Day     int32   `json:"day"` // days since 1970-01-01 in the rule's time zone
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	HasDay  bool    `json:"has_day"`
	Total   float64 `json:"total"`
	PrevT   int64   `json:"prev_t"`
	PrevV   float64 `json:"prev_v"`
	HasPrev bool    `json:"has_prev"`
}

// maxTHIGap caps the time one temperature reading stands for in THI-hours,
// so a gap in the data does not count as hours of stress.
const maxTHIGap = time.Hour

// accumulate adds v at t and returns the rule's measure, or false when it
// cannot be judged yet. hum is the newest humidity of the device (THI).
func (s *series) accumulate(c *crule, t time.Time, v float64, hum func() (float64, bool)) (float64, bool) {
	a := c.Accumulate
	if s.Acc == nil {
		s.Acc = &accumulator{}
	}
	st := s.Acc
	switch a.Func {
	case rules.Sum:
		s.window().add(t, v, a.Window)
		return s.Win.Sum, true
	case rules.Increase:
		inc := 0.0
		if st.HasPrev {
			inc = v - st.PrevV
			if inc < 0 { // the counter was reset
				inc = v
			}
		}
		st.PrevV, st.HasPrev = v, true
		s.window().add(t, inc, a.Window)
		return s.Win.Sum, true
	case rules.THIHours:
		rh, ok := hum()
		if !ok {
			return 0, false
		}
		part := 0.0
		if st.HasPrev {
			gap := min(time.Duration(t.UnixNano()-st.PrevT), maxTHIGap)
			part = math.Max(0, standards.THI(v, rh)-a.Base) * gap.Hours()
		}
		st.PrevT, st.HasPrev = t.UnixNano(), true
		s.window().add(t, part, a.Window)
		return s.Win.Sum, true
	}
	// Day-based: degree days, hot days.
	day := dayOf(t, c.loc)
	if st.HasDay && day != st.Day {
		if day < st.Day {
			return 0, false // late data from an earlier day: not judged
		}
		st.closeDay(c, day)
	}
	if !st.HasDay || day != st.Day {
		st.Day, st.Min, st.Max, st.HasDay = day, v, v, true
	}
	st.Min, st.Max = math.Min(st.Min, v), math.Max(st.Max, v)
	if a.Func == rules.HotDays {
		today := 0.0
		if st.Max >= a.Threshold {
			today = 1
		}
		return st.Total + today, true
	}
	if !c.inSeason(st.Day) {
		return st.Total, true
	}
	return st.Total + c.degreeDay(st.Min, st.Max), true
}

// closeDay ends st.Day as day next begins.
func (st *accumulator) closeDay(c *crule, next int32) {
	a := c.Accumulate
	switch a.Func {
	case rules.HotDays:
		if st.Max >= a.Threshold && next == st.Day+1 {
			st.Total++
		} else {
			st.Total = 0 // a cool day, or a day without data, ends the run
		}
	case rules.DegreeDays:
		if c.inSeason(st.Day) {
			st.Total += c.degreeDay(st.Min, st.Max)
		}
		if yearOf(next) != yearOf(st.Day) {
			st.Total = 0
		}
	}
}

func (c *crule) degreeDay(tmin, tmax float64) float64 {
	a := c.Accumulate
	lo := math.Max(tmin, a.Base)
	hi := tmax
	if a.Cutoff != nil {
		hi = math.Min(hi, *a.Cutoff)
	}
	hi = math.Max(hi, a.Base)
	return math.Max(0, (hi+lo)/2-a.Base)
}

// inSeason reports whether day is on or after the biofix of its year.
func (c *crule) inSeason(day int32) bool {
	d := time.Unix(int64(day)*86400, 0).UTC()
	return d.Month() > c.since.Month() || (d.Month() == c.since.Month() && d.Day() >= c.since.Day())
}

func dayOf(t time.Time, loc *time.Location) int32 {
	y, m, d := t.In(loc).Date()
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func yearOf(day int32) int { return time.Unix(int64(day)*86400, 0).UTC().Year() }

func (s *series) window() *window {
	if s.Win == nil {
		s.Win = &window{}
	}
	return s.Win
}
