package hj212listen

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Kinds of refusal the mapping adds to the codec's (hj212.Kind…).
const (
	KindDataTime = "datatime" // DataTime (or a SampleTime) missing, not YYYYMMDDhhmmss, or before 2000
	KindValue    = "value"    // a value that is not a number as table 4's N types write it
)

// mapError is a data upload refused by the mapping.
type mapError struct{ kind, msg string }

func (e *mapError) Error() string { return e.kind + ": " + e.msg }

func refuse(kind, format string, args ...any) error {
	return &mapError{kind, fmt.Sprintf(format, args...)}
}

// period is what a data upload's CN holds: real-time values (2011) or a
// period's statistics (2051 minute, 2061 hour, 2031 day), and the suffix
// its statistics' metrics get.
type period struct {
	name string
	// values maps the field suffixes taken (Rtd, Avg, …) to the metric
	// suffix they are stored under; cou marks the cumulative one.
	values map[string]string
	// main is the suffix a factor sent with its flag alone is stored
	// under, as a bad reading without a value.
	main string
}

var periods = map[string]period{
	hj212.CNRealtime: {"realtime", map[string]string{"Rtd": "", "ZsRtd": "_zs"}, "Rtd"},
	hj212.CNMinute:   {"minute", statValues("_minute"), "Avg"},
	hj212.CNHour:     {"hour", statValues("_hour"), "Avg"},
	hj212.CNDay:      {"day", statValues("_day"), "Avg"},
}

func statValues(p string) map[string]string {
	return map[string]string{"Avg": p + "_avg", "Min": p + "_min", "Max": p + "_max", "Cou": p + "_cou",
		"ZsAvg": p + "_zs_avg", "ZsMin": p + "_zs_min", "ZsMax": p + "_zs_max"}
}

// minDataTime is the earliest DataTime taken: HJ 212 did not exist before,
// and a logger whose clock was never set sends 2000-01-01 or 1970.
var minDataTime = time.Date(2000, 1, 2, 0, 0, 0, 0, time.UTC)

// upload is one data upload mapped: its DataTime and its readings.
type upload struct {
	dataTime time.Time
	readings []telemetry.Reading
	// unmapped are the factor codes stored under their own code.
	unmapped []string
}

// mapUpload turns the CP of a data upload (CN in periods) into readings of
// device, factor codes through factors (then the code itself), times read
// in loc. It refuses (a *mapError) a missing or bad DataTime or SampleTime
// and a value that is not a number; an empty value, or a flag without a
// value, is taken only with a flag other than N (the instrument says why
// it has none), as a bad reading.
func mapUpload(cn string, cp hj212.CP, device string, factors func(string) (Factor, bool), loc *time.Location) (upload, error) {
	var u upload
	per, ok := periods[cn]
	if !ok {
		return u, fmt.Errorf("BUG: mapUpload of CN %s", cn)
	}
	params := cp.Params()
	dt, ok := params["DataTime"]
	if !ok {
		return u, refuse(KindDataTime, "no DataTime")
	}
	t, err := readTime(dt, loc)
	if err != nil {
		return u, err
	}
	u.dataTime = t
	fs := cp.Factors()
	codes := make([]string, 0, len(fs))
	for code := range fs {
		codes = append(codes, code)
	}
	// The CP's order, for readings a person can follow in a test or log.
	codes = orderOf(cp, codes)
	for _, code := range codes {
		fields := fs[code]
		// A factor with a flag other than N and no value (a data logger
		// that cannot reach the instrument, B; one stopped, F) says why it
		// has none: a bad reading without a value, as an empty value.
		flagOnly := !hasAny(fields, per.values) && fields["Flag"] != "" && fields["Flag"] != hj212.DataNormal
		f, known := factors(code)
		if !known {
			if !hasAny(fields, per.values) && !flagOnly {
				continue // a facility state (SB1-RS) or an instrument's info: not a value of this upload
			}
			if err := telemetry.CheckName("metric", code); err != nil {
				return u, refuse(KindValue, "factor code %q cannot be a metric: %v", code, err)
			}
			f = Factor{Metric: code}
			u.unmapped = append(u.unmapped, code)
		}
		q, flag := quality(fields)
		at := t
		if st, ok := fields["SampleTime"]; ok {
			if at, err = readTime(st, loc); err != nil {
				return u, err
			}
		}
		if flagOnly {
			u.readings = append(u.readings, telemetry.Reading{Device: device, Metric: f.Metric + per.values[per.main],
				Value: math.NaN(), Unit: f.Unit, Time: at, Quality: telemetry.Bad, Clock: telemetry.ClockUnknown})
			continue
		}
		for _, suffix := range sortedKeys(fields) {
			ms, ok := per.values[suffix]
			if !ok {
				continue
			}
			v, err := readValue(code, suffix, fields[suffix], flag)
			if err != nil {
				return u, err
			}
			rq := q
			if math.IsNaN(v) {
				rq = telemetry.Bad
			}
			unit := f.Unit
			if suffix == "Cou" {
				unit = f.CouUnit
			}
			u.readings = append(u.readings, telemetry.Reading{Device: device, Metric: f.Metric + ms, Value: v,
				Unit: unit, Time: at, Quality: rq, Clock: telemetry.ClockUnknown})
		}
	}
	return u, nil
}

// readTime reads DataTime or SampleTime.
func readTime(s string, loc *time.Location) (time.Time, error) {
	t, err := hj212.ParseTime(s, loc)
	if err != nil {
		return t, refuse(KindDataTime, "%v", err)
	}
	if t.Before(minDataTime) {
		return t, refuse(KindDataTime, "%s is before 2000 (the logger's clock is not set)", s)
	}
	return t.UTC(), nil
}

// readValue reads a value as table 4's N types write it: an optional sign,
// digits, an optional point and decimals (N14.2: at most 18 characters);
// no exponent, no NaN or Inf. An empty value is NaN when flag is given and
// not N.
func readValue(code, suffix, s, flag string) (float64, error) {
	if s == "" {
		if flag != "" && flag != hj212.DataNormal {
			return math.NaN(), nil
		}
		return 0, refuse(KindValue, "%s-%s is empty with flag %q", code, suffix, flag)
	}
	if !isNumber(s) {
		return 0, refuse(KindValue, "%s-%s=%q is not a number", code, suffix, s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, refuse(KindValue, "%s-%s=%q: %v", code, suffix, s, err)
	}
	return v, nil
}

func isNumber(s string) bool {
	if len(s) > 24 {
		return false
	}
	if s[0] == '-' || s[0] == '+' {
		s = s[1:]
	}
	ip, fp, dot := strings.Cut(s, ".")
	if dot && fp == "" {
		return false
	}
	return (ip != "" || fp != "") && digits(ip) && digits(fp)
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// quality is the quality a factor's data flag (HJ 212-2017 table 8)
// gives its values: N (or no flag, as HJ/T 212-2005 loggers send) good;
// S, a value set by hand, uncertain; F stopped, M maintenance, D fault,
// C calibrating, T above the range, B no link to the instrument bad; a
// flag the 2017 table does not have uncertain.
func quality(fields map[string]string) (telemetry.Quality, string) {
	flag, ok := fields["Flag"]
	if !ok {
		return telemetry.Good, ""
	}
	switch flag {
	case hj212.DataNormal:
		return telemetry.Good, flag
	case hj212.DataManual:
		return telemetry.Uncertain, flag
	case hj212.DataStopped, hj212.DataMaintenance, hj212.DataFault, hj212.DataCalibration, hj212.DataOverRange,
		hj212.DataCommFault:
		return telemetry.Bad, flag
	}
	return telemetry.Uncertain, flag
}

func hasAny(fields map[string]string, values map[string]string) bool {
	for s := range fields {
		if _, ok := values[s]; ok {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// orderOf orders codes as they first appear in cp.
func orderOf(cp hj212.CP, codes []string) []string {
	want := make(map[string]bool, len(codes))
	for _, c := range codes {
		want[c] = true
	}
	out := codes[:0]
	for _, it := range cp {
		for _, f := range it {
			code, _, ok := strings.Cut(f.Name, "-")
			if ok && want[code] {
				out = append(out, code)
				delete(want, code)
			}
		}
	}
	return out
}
