package hj212up

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/protocols/hj212"
)

// Cou is a period's cumulative amount (HJ 212-2017 table 4 xxxxxx-Cou,
// computed as appendix D says): for a flow factor (waste water w00000,
// flue gas a00000) the volume that flowed, Σ Q × T (D.1.1, formulas 1–4:
// Q in L/s, D = Q × T × 10⁻³ m³); for a pollutant the mass emitted with
// that flow, Σ C × D (D.1.2, formulas 8–11: G = D × C × 10⁻³ kg for C in
// mg/L; D.2.5 for flue gas: mg/m³ × m³ × 10⁻⁶ kg), in the unit of the
// tables' 排放量 column (hj212.CouUnits).
//
// Integrated on event time: each normal reading stands for the time until
// the next normal reading of its factor in the period (D's "time slice"
// T), at most maxGap and never beyond the period's end. A gap longer than
// maxGap (a device quarantined, a flow meter in maintenance, a buffer
// drop) counts maxGap and no more: the amount is what was measured, never
// extrapolated. A pollutant's slices count only where a
// normal flow slice covers them too (the overlap of the two).
type couRule struct {
	flows  map[string]string // pollutant code → its flow's code
	maxGap time.Duration
}

// formatCou writes a Cou with 6 significant digits, trailing zeros
// dropped but one decimal kept: table 4 gives its type as "--", C.16–C.18
// write 10.5, 63.0, 1512.0 (what this gives for them), and a small
// station's 10-minute emission in kg (0.042105) must not round to 0.0.
func formatCou(v float64) string {
	d := 1
	if a := math.Abs(v); a > 0 {
		d = max(1, min(12, 5-int(math.Floor(math.Log10(a)))))
	}
	s := strconv.FormatFloat(v, 'f', d, 64)
	for strings.HasSuffix(s, "0") && !strings.HasSuffix(s, ".0") {
		s = s[:len(s)-1]
	}
	return s
}

// Flow factors: their Cou is a volume.
var flowCodes = map[string]bool{"w00000": true, "a00000": true}

func newCouRule(flows map[string]string, maxGap time.Duration) *couRule {
	if maxGap <= 0 {
		maxGap = 5 * time.Minute // config.HJ212Uplink's default
	}
	r := &couRule{flows: map[string]string{}, maxGap: maxGap}
	for code := range hj212.CouUnits {
		if flowCodes[code] {
			continue
		}
		if code[0] == 'w' {
			r.flows[code] = "w00000"
		} else if code[0] == 'a' {
			r.flows[code] = "a00000"
		}
	}
	for p, f := range flows {
		r.flows[p] = f
	}
	return r
}

// isFlow reports whether code is a flow factor (built in, or a pollutant's
// flow in the config).
func (r *couRule) isFlow(code string) bool {
	if flowCodes[code] {
		return true
	}
	for _, f := range r.flows {
		if f == code {
			return true
		}
	}
	return false
}

// takes reports whether code's readings are kept for Cou.
func (r *couRule) takes(code string) bool {
	if r == nil {
		return false
	}
	_, pollutant := r.flows[code]
	return pollutant || r.isFlow(code)
}

// slice is the time a normal reading stands for, and its value.
type slice struct {
	from, to time.Time
	v        float64
}

// slices turns samples into the time each normal one stands for in the
// period start … end: from its time until the next sample's (normal or
// not: a reading flagged M ends the slice of the one before), at most
// maxGap, and not beyond the period's end (a logger's sample and hold: the last
// instantaneous value holds for the time slice that follows; the time
// before a period's first sample was its previous period's).
func (r *couRule) slices(samples []sample, end time.Time) []slice {
	ss := slices.Clone(samples)
	slices.SortStableFunc(ss, func(a, b sample) int { return a.t.Compare(b.t) })
	out := make([]slice, 0, len(ss))
	for i, s := range ss {
		to := earlier(s.t.Add(r.maxGap), end)
		if i+1 < len(ss) {
			to = earlier(to, ss[i+1].t)
		}
		if s.valid && to.After(s.t) {
			out = append(out, slice{s.t, to, s.v})
		}
	}
	return out
}

// compute is the Cou of each factor of a that has one.
func (r *couRule) compute(a *aggregate) map[string]float64 {
	if r == nil {
		return nil
	}
	out := map[string]float64{}
	flowSlices := map[string][]slice{}
	for code, s := range a.factors {
		if !r.isFlow(code) || len(s.samples) == 0 {
			continue
		}
		perSecond, ok := volumeRate(s.f.unit)
		if !ok {
			continue
		}
		ss := r.slices(s.samples, a.end)
		flowSlices[code] = ss
		var vol float64
		for _, x := range ss {
			vol += x.v * perSecond * x.to.Sub(x.from).Seconds()
		}
		out[code] = vol
	}
	for code, s := range a.factors {
		flow, ok := r.flows[code]
		fs := flowSlices[flow]
		if !ok || len(s.samples) == 0 || len(fs) == 0 {
			continue
		}
		perSecond, _ := volumeRate(a.factors[flow].f.unit)
		mass, ok := massPerVolume(s.f.unit, couUnit(code, s.f.unit))
		if !ok {
			continue
		}
		cs := r.slices(s.samples, a.end)
		var sum float64
		covered := false
		for i, j := 0, 0; i < len(cs) && j < len(fs); {
			from, to := later(cs[i].from, fs[j].from), earlier(cs[i].to, fs[j].to)
			if to.After(from) {
				sum += cs[i].v * fs[j].v * perSecond * to.Sub(from).Seconds() * mass
				covered = true
			}
			if cs[i].to.Before(fs[j].to) {
				i++
			} else {
				j++
			}
		}
		if covered {
			out[code] = sum
		}
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// volumeRate is how many m³ per second one unit of a flow is.
func volumeRate(unit string) (float64, bool) {
	f, ok := map[string]float64{"L/s": 1e-3, "L/min": 1e-3 / 60, "m3/s": 1, "m3/min": 1.0 / 60, "m3/h": 1.0 / 3600,
		"m3/d": 1.0 / 86400}[canon(unit)]
	return f, ok
}

// grams and cubic metres of the units concentrations and amounts are in.
var (
	grams = map[string]float64{"t": 1e6, "kg": 1e3, "g": 1, "mg": 1e-3, "ug": 1e-6, "ng": 1e-9}
	cubic = map[string]float64{"L": 1e-3, "m3": 1}
)

// couUnit is the unit of code's Cou: the table's, else a million times the
// concentration's mass unit (mg/L → kg, µg/L → g, ng/L → mg), the
// pattern of tables B.1 and B.2.
func couUnit(code, conc string) string {
	if u, ok := hj212.CouUnits[code]; ok {
		return u
	}
	m, _, _ := strings.Cut(canon(conc), "/")
	return map[string]string{"mg": "kg", "ug": "g", "ng": "mg"}[m]
}

// massPerVolume is the factor that makes concentration × m³ an amount in
// unit.
func massPerVolume(conc, unit string) (float64, bool) {
	m, v, ok := strings.Cut(canon(conc), "/")
	gm, ok1 := grams[m]
	cv, ok2 := cubic[v]
	gu, ok3 := grams[unit]
	if !ok || !ok1 || !ok2 || !ok3 {
		return 0, false
	}
	return gm / cv / gu, true
}
