package hj212up

import (
	"math"
	"sort"
	"strings"
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
	n             int            // readings, and seconds its device was quarantined (see down)
	flags         map[string]int // of those, how many had each flag
	sum, min, max float64        // over the N readings
	samples       []sample       // the readings, when Cou needs them
	placeholder   bool           // f is only the code: no reading yet
}

// sample is one reading's time and value, and whether it is normal.
type sample struct {
	t     time.Time
	v     float64
	valid bool
}

// aggregate is one period's factors in the making.
type aggregate struct {
	start    time.Time
	end      time.Time // the period's end (Cou's slices stop there)
	factors  map[string]*stats
	readings int
	cou      *couRule  // nil: no Cou
	slot     time.Time // the last second the quarantined devices' factors were counted for
}

func (a *aggregate) stat(f factor) *stats {
	if a.factors == nil {
		a.factors = map[string]*stats{}
	}
	s := a.factors[f.code]
	if s == nil {
		s = &stats{f: f, flags: map[string]int{}, min: math.Inf(1), max: math.Inf(-1)}
		a.factors[f.code] = s
	}
	return s
}

// add counts one reading of factor f with its flag; Avg, Min, Max and
// Cou take the normal ones.
func (a *aggregate) add(f factor, v float64, r telemetry.Reading, flag string) {
	s := a.stat(f)
	if s.placeholder { // made by down: the factor as a reading maps it
		s.f, s.placeholder = f, false
	}
	s.n++
	s.flags[flag]++
	a.readings++
	valid := flag == hj212.DataNormal && !math.IsNaN(v) && !math.IsInf(v, 0)
	if a.cou.takes(f.code) { // one that is not valid ends the slice before it
		s.samples = append(s.samples, sample{r.Time, v, valid})
	}
	if !valid {
		return
	}
	s.sum += v
	s.min = math.Min(s.min, v)
	s.max = math.Max(s.max, v)
}

// down counts, once per second of acquisition t, a B for each factor of a
// quarantined device: what the real-time frame of that second carries
// for it (realtime.cp), so that a period's flag weighs the quarantine as
// the real-time data showed it.
func (a *aggregate) down(codes []string, t time.Time) {
	sec := t.Truncate(time.Second)
	if len(codes) == 0 || sec.Equal(a.slot) {
		return
	}
	a.slot = sec
	for _, c := range codes {
		s := a.stat(factor{code: c, decimals: -1, scale: 1})
		if s.n == 0 {
			s.placeholder = true
		}
		s.n++
		s.flags[hj212.DataCommFault]++
	}
}

// flagOrder breaks ties between abnormal flags: what the instrument was
// doing (stopped, maintenance, calibration) before why a value is
// missing or wrong.
const flagOrder = "FMCBTDS"

// aggregateFlag is a period's flag by the notes under HJ 212-2017
// C.16–C.18: a water factor is abnormal if one reading of the period was;
// an air (flue gas) factor is normal when at least 75 % of its readings
// were, else "instrument fault". The standard does not say which letter
// "abnormal" is: it is the period's most frequent abnormal flag (ties by
// flagOrder), so an hour of calibration is C, not D. For air, a period
// whose abnormal readings all share one flag takes it, a mixed one D as
// the note says. Factors whose code starts with neither w nor a follow
// the water rule (the stricter).
func aggregateFlag(code string, n int, flags map[string]int) string {
	normal := flags[hj212.DataNormal]
	if normal == n {
		return hj212.DataNormal
	}
	air := code != "" && code[0] == 'a'
	if air && 4*normal >= 3*n {
		return hj212.DataNormal
	}
	best, kinds := "", 0
	for _, f := range flagOrder {
		c := flags[string(f)]
		if c == 0 {
			continue
		}
		kinds++
		if best == "" || c > flags[best] {
			best = string(f)
		}
	}
	for f, c := range flags { // a letter outside flagOrder (none today)
		if c > 0 && f != hj212.DataNormal && !strings.Contains(flagOrder, f) {
			kinds++
		}
	}
	if best == "" || (air && kinds > 1) {
		return hj212.DataFault
	}
	return best
}

// cp is the aggregate's data area: DataTime (the period's start), then per
// factor Cou (when it has one, first as in C.16), Avg, Min, Max of the
// normal readings and the period's flag; a factor without a normal
// reading carries its flag alone. Factors are in code order.
func (a *aggregate) cp(loc *time.Location) hj212.CP {
	cp := hj212.CP{{{Name: "DataTime", Value: hj212.FormatTime(a.start, loc)}}}
	codes := make([]string, 0, len(a.factors))
	for c := range a.factors {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	cous := a.cou.compute(a)
	for _, c := range codes {
		s := a.factors[c]
		flag := aggregateFlag(c, s.n, s.flags)
		normal := s.flags[hj212.DataNormal]
		if normal == 0 || math.IsInf(s.min, 0) {
			cp = append(cp, hj212.FactorItem(c, "Flag", flag))
			continue
		}
		d := s.f.decimals
		var fields []string
		if v, ok := cous[c]; ok {
			fields = append(fields, "Cou", formatCou(v))
		}
		fields = append(fields, "Avg", formatValue(s.sum/float64(normal), d),
			"Min", formatValue(s.min, d), "Max", formatValue(s.max, d), "Flag", flag)
		cp = append(cp, hj212.FactorItem(c, fields...))
	}
	return cp
}
