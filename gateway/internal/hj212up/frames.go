package hj212up

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Skip reasons: readings that are mapped to a factor but not sent.
const (
	SkipUnit     = "unit"     // the reading's unit is not the factor's and cannot be converted
	SkipUnsynced = "unsynced" // stamped while the clock was unset: no true DataTime
	SkipPaused   = "paused"   // real-time data stopped by the platform (2012)
)

// factor is where one mapped reading goes.
type factor struct {
	code     string
	unit     string  // the unit the factor is sent in; "" takes the reading's
	decimals int     // -1: as few as the value needs
	scale    float64 // multiplies the reading's value (a unit conversion); 0 before it is known
}

// Mapper maps readings to factors: the config's factors (metric or
// device/metric → code) and units, the standard's table for the rest.
type Mapper struct {
	byMetric map[string]string
	units    map[string]string
}

// NewMapper builds a Mapper from an uplink's factors and unit overrides.
func NewMapper(factors, units map[string]string) *Mapper {
	return &Mapper{byMetric: factors, units: units}
}

// Map returns the factor of r and its value in the factor's unit; ok is
// false when r is not mapped, skip names why a mapped reading is not sent.
func (m *Mapper) Map(r telemetry.Reading) (f factor, v float64, ok bool, skip string) {
	code, ok := m.byMetric[r.Device+"/"+r.Metric]
	if !ok {
		if code, ok = m.byMetric[r.Metric]; !ok {
			return f, 0, false, ""
		}
	}
	f = factor{code: code, decimals: -1, scale: 1}
	if t, known := hj212.Factors[code]; known {
		f.unit = t.Unit
		f.decimals = decimalsOf(t.Format)
	}
	if u, set := m.units[code]; set {
		f.unit = u
	}
	if r.Clock == telemetry.ClockUnsynced {
		return f, 0, true, SkipUnsynced
	}
	if f.unit != "" {
		scale, conv := convert(r.Unit, f.unit)
		if !conv {
			return f, 0, true, SkipUnit
		}
		f.scale = scale
	}
	return f, r.Value * f.scale, true, ""
}

// decimalsOf reads the decimals of a data type such as N5.1 (1) or N4 (0).
func decimalsOf(format string) int {
	if _, d, ok := strings.Cut(format, "."); ok {
		if n, err := strconv.Atoi(d); err == nil {
			return n
		}
	}
	if strings.HasPrefix(format, "N") {
		return 0
	}
	return -1
}

// canon spells a unit one way: the standard's tables write Cel, uS/cm,
// m3/s, deg; profiles write °C, µS/cm, m³/s, °.
func canon(u string) string {
	u = strings.TrimSpace(u)
	r := strings.NewReplacer("µ", "u", "μ", "u", "³", "3", "²", "2", "℃", "Cel", "°C", "Cel", "degC", "Cel")
	u = r.Replace(u)
	switch strings.ToLower(u) {
	case "", "1", "ph":
		return "1"
	case "°", "deg", "degree", "degrees":
		return "deg"
	case "mg/l":
		return "mg/L"
	case "ug/l":
		return "ug/L"
	}
	return u
}

// conversions are the unit changes the uplink makes: value in from ×
// factor = value in to.
var conversions = map[[2]string]float64{
	{"Pa", "kPa"}:      0.001,
	{"hPa", "kPa"}:     0.1,
	{"mS/cm", "uS/cm"}: 1000,
	{"ug/L", "mg/L"}:   0.001,
}

func convert(from, to string) (float64, bool) {
	from, to = canon(from), canon(to)
	if from == to {
		return 1, true
	}
	f, ok := conversions[[2]string{from, to}]
	return f, ok
}

// formatValue writes v with the factor's decimals.
func formatValue(v float64, decimals int) string {
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// realtime is one 2011 frame in the making: the readings of one second,
// one per factor, and the last sequence it covers.
type realtime struct {
	second   time.Time
	items    []hj212.Item
	codes    map[string]bool
	readings int
	down     []string // the quarantined devices' factors as of the frame's last reading
}

func (f *realtime) empty() bool { return len(f.items) == 0 }

// add puts one mapped reading in the frame; false when it belongs to
// another frame (another second, or a factor the frame already has).
func (f *realtime) add(fc factor, v float64, r telemetry.Reading, flag string, down []string) bool {
	sec := r.Time.Truncate(time.Second)
	if !f.empty() && (!sec.Equal(f.second) || f.codes[fc.code]) {
		return false
	}
	if f.empty() {
		f.second, f.codes = sec, map[string]bool{}
	}
	f.codes[fc.code] = true
	f.down = down
	if math.IsNaN(v) || math.IsInf(v, 0) {
		f.items = append(f.items, hj212.FactorItem(fc.code, "Flag", flag))
	} else {
		f.items = append(f.items, hj212.FactorItem(fc.code, "Rtd", formatValue(v, fc.decimals), "Flag", flag))
	}
	f.readings++
	return true
}

// cp is the frame's data area: DataTime, then the factors, then those of
// the quarantined devices the frame has no reading of, flagged B without
// a value: the logger reports that it cannot reach the instrument.
func (f *realtime) cp(loc *time.Location) hj212.CP {
	cp := hj212.CP{{{Name: "DataTime", Value: hj212.FormatTime(f.second, loc)}}}
	cp = append(cp, f.items...)
	for _, c := range f.down {
		if !f.codes[c] {
			cp = append(cp, hj212.FactorItem(c, "Flag", hj212.DataCommFault))
		}
	}
	return cp
}
