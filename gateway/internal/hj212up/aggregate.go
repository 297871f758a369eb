package hj212up

import (
	"math"
	"sort"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// SkipLate names readings of a period whose aggregate was already sent.
const SkipLate = "late"

// cnOf is the command code of each data kind.
var cnOf = map[string]string{config.KindRealtime: hj212.CNRealtime, config.KindMinute: hj212.CNMinute,
	config.KindHour: hj212.CNHour, config.KindDay: hj212.CNDay}

// periodStart is the start of the period of kind holding t, in loc: minute
// periods of `minute` aligned on the hour, hours, days from midnight.
func periodStart(kind string, t time.Time, minute time.Duration, loc *time.Location) time.Time {
	t = t.In(loc)
	y, mo, d := t.Date()
	switch kind {
	case config.KindMinute:
		m := int(minute / time.Minute)
		return time.Date(y, mo, d, t.Hour(), t.Minute()/m*m, 0, 0, loc)
	case config.KindHour:
		return time.Date(y, mo, d, t.Hour(), 0, 0, 0, loc)
	}
	return time.Date(y, mo, d, 0, 0, 0, 0, loc)
}

// periodEnd is the end of the period starting at start.
func periodEnd(kind string, start time.Time, minute time.Duration) time.Time {
	switch kind {
	case config.KindMinute:
		return start.Add(minute)
	case config.KindHour:
		return start.Add(time.Hour)
	}
	return start.AddDate(0, 0, 1)
}

// stats are one factor's values in a period.
type stats struct {
	f             factor
	n, normal     int     // readings, and those flagged N
	sum, min, max float64 // over the N readings
}

// aggregate is one period's factors in the making.
type aggregate struct {
	start    time.Time
	factors  map[string]*stats
	readings int
}

func (a *aggregate) add(f factor, v float64, r telemetry.Reading) {
	if a.factors == nil {
		a.factors = map[string]*stats{}
	}
	s := a.factors[f.code]
	if s == nil {
		s = &stats{f: f, min: math.Inf(1), max: math.Inf(-1)}
		a.factors[f.code] = s
	}
	s.n++
	a.readings++
	if Flag(r.Quality) != hj212.DataNormal || math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	s.normal++
	s.sum += v
	s.min = math.Min(s.min, v)
	s.max = math.Max(s.max, v)
}

// aggregateFlag is a period's flag (notes under HJ 212-2017 C.16–C.18): a
// water factor is abnormal if one reading of the period was; an air
// factor is normal when at least 75 % of its readings were. Others follow
// the water rule (the stricter).
func aggregateFlag(code string, n, normal int) string {
	if code != "" && code[0] == 'a' {
		if 4*normal >= 3*n {
			return hj212.DataNormal
		}
		return hj212.DataFault
	}
	if normal == n {
		return hj212.DataNormal
	}
	return hj212.DataFault
}

// cp is the aggregate's data area: DataTime (the period's start), then per
// factor Avg, Min, Max of the normal readings and the period's flag; a
// factor without a normal reading carries its flag alone. Factors are in
// code order.
func (a *aggregate) cp(loc *time.Location) hj212.CP {
	cp := hj212.CP{{{Name: "DataTime", Value: hj212.FormatTime(a.start, loc)}}}
	codes := make([]string, 0, len(a.factors))
	for c := range a.factors {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		s := a.factors[c]
		flag := aggregateFlag(c, s.n, s.normal)
		if s.normal == 0 {
			cp = append(cp, hj212.FactorItem(c, "Flag", flag))
			continue
		}
		d := s.f.decimals
		cp = append(cp, hj212.FactorItem(c, "Avg", formatValue(s.sum/float64(s.normal), d),
			"Min", formatValue(s.min, d), "Max", formatValue(s.max, d), "Flag", flag))
	}
	return cp
}
