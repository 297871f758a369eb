package cli

import (
	"fmt"
	"math"
	"strings"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
)

// How probe ranks the profiles a unit answers (every register they name
// exists on it). Each decoded value is judged on its own:
//
//   - plausible: finite, inside the profile's range for the field if it
//     gives one, and for a float of a sane magnitude;
//   - zero: every register word 0, which is also what a register that is
//     not set reads, so it counts neither for nor against;
//   - implausible: outside the range, a sentinel, NaN, or a float smaller
//     than 1e-6 or larger than 1e9 in magnitude, which is what the wrong
//     word order makes of a float (4e-37, 1e+30).
//
// Profiles are then ranked by, in order: fewer implausible values, more
// plausible values, the factory baud rate (2) and address (1) matching
// where the unit answered, more fields read. So a profile whose values make
// sense ranks above one that merely matches the factory settings, and the
// factory settings only decide between profiles the values cannot tell
// apart. A profile without any plausible value is not listed.

// Magnitudes outside which a decoded float is taken for a word-order
// mistake rather than a measurement.
const (
	floatTiny = 1e-6
	floatHuge = 1e9
)

// verdict is what one decoded field says about a profile.
type verdict int

const (
	plausible verdict = iota
	zero
	implausible
)

// judge weighs one decoded field; note says why an implausible one is.
func judge(r row) (v verdict, note string) {
	allZero := true
	for _, w := range r.Raw {
		allZero = allZero && w == 0
	}
	switch {
	case r.Bad != "":
		return implausible, fmt.Sprintf("%s %s", r.Metric, r.Bad)
	case isFloat(r.Type) && r.Value != 0 && (math.Abs(r.Value) < floatTiny || math.Abs(r.Value) > floatHuge):
		return implausible, fmt.Sprintf("%s %.2g", r.Metric, r.Value)
	case allZero:
		return zero, ""
	}
	return plausible, ""
}

func isFloat(t modbus.Type) bool { return t == modbus.Float32 || t == modbus.Float64 }

// evidence sums up how well a profile's decoded values fit a unit.
type evidence struct {
	fields      int
	plausible   int
	zero        int
	implausible int
	notes       []string // why values are implausible
	baud, unit  bool     // the unit answered at the profile's factory baud rate, address
}

// weigh judges every row of p read from a unit at address unit and baud
// (0 over TCP, where the baud rate is not the device's).
func weigh(p *profiles.Profile, rows []row, unit uint8, baud int) evidence {
	e := evidence{fields: len(rows), baud: baud != 0 && p.Modbus.Defaults.Baud == baud,
		unit: p.Modbus.Defaults.Unit == int(unit)}
	for _, r := range rows {
		switch v, note := judge(r); v {
		case plausible:
			e.plausible++
		case zero:
			e.zero++
		default:
			e.implausible++
			e.notes = append(e.notes, note)
		}
	}
	return e
}

// factory scores the factory settings that match: the baud rate outweighs
// the address, which technicians change more often.
func (e evidence) factory() int {
	n := 0
	if e.baud {
		n += 2
	}
	if e.unit {
		n++
	}
	return n
}

// better reports whether e ranks above o.
func (e evidence) better(o evidence) bool {
	switch {
	case e.implausible != o.implausible:
		return e.implausible < o.implausible
	case e.plausible != o.plausible:
		return e.plausible > o.plausible
	case e.factory() != o.factory():
		return e.factory() > o.factory()
	}
	return e.fields > o.fields
}

// String explains the ranking: "3/3 plausible; factory baud, address" or
// "2/7 plausible, 4 zero; turbidity 4e-37".
func (e evidence) String() string {
	s := fmt.Sprintf("%d/%d plausible", e.plausible, e.fields)
	if e.zero > 0 {
		s += fmt.Sprintf(", %d zero", e.zero)
	}
	if len(e.notes) > 0 {
		s += "; " + strings.Join(e.notes, ", ")
	}
	var f []string
	if e.baud {
		f = append(f, "baud")
	}
	if e.unit {
		f = append(f, "address")
	}
	if len(f) > 0 {
		s += "; factory " + strings.Join(f, ", ")
	}
	return s
}
