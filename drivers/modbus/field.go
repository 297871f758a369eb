package modbus

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Table is the Modbus data table a register is read from, named after the
// function code that reads it.
type Table string

// Tables.
const (
	Holding Table = "holding" // FC03 read holding registers
	Input   Table = "input"   // FC04 read input registers
)

// FunctionCode returns the read function code of t.
func (t Table) FunctionCode() byte {
	if t == Input {
		return 0x04
	}
	return 0x03
}

// Type is how the register words of a field are interpreted.
type Type string

// Types.
const (
	Uint16  Type = "uint16"
	Int16   Type = "int16"
	Uint32  Type = "uint32"
	Int32   Type = "int32"
	Float32 Type = "float32"
	Float64 Type = "float64"
)

// Words is how many 16-bit registers a value of type t occupies.
func (t Type) Words() int {
	switch t {
	case Uint16, Int16:
		return 1
	case Uint32, Int32, Float32:
		return 2
	case Float64:
		return 4
	}
	return 0
}

// Order is the byte order of a multi-byte value, written as the letters of a
// big-endian value ABCD (or ABCDEFGH for 64 bits) in the order they appear
// on the wire. Modbus itself sends each register high byte first, so ABCD is
// "high word first" and CDAB is "low word first"; BADC and DCBA also swap
// the bytes inside each register. For 16-bit types only the byte swap
// (BADC, DCBA) matters.
type Order string

// Orders.
const (
	ABCD Order = "ABCD"
	CDAB Order = "CDAB"
	BADC Order = "BADC"
	DCBA Order = "DCBA"
)

// Field is one value of a device's register map.
type Field struct {
	Metric  string    `yaml:"metric"`  // reading name, e.g. soil_moisture
	Table   Table     `yaml:"table"`   // holding (default) or input
	Address uint16    `yaml:"address"` // 0-based protocol address (40001 is 0)
	Type    Type      `yaml:"type"`    // default uint16
	Order   Order     `yaml:"order"`   // default ABCD
	Scale   float64   `yaml:"scale"`   // default 1; value = raw × scale + offset
	Offset  float64   `yaml:"offset"`
	Unit    string    `yaml:"unit"`
	Range   []float64 `yaml:"range"`   // [min, max] valid range after scaling; outside is bad
	Invalid []int64   `yaml:"invalid"` // raw values that mean "no value" (e.g. 0xFFFF, 0x7FFF)
	// Bits selects a bit field of an integer value: "5" is bit 5 (0 or 1),
	// "4-7" is bits 4 to 7 shifted down (bit 0 is the least significant).
	Bits string `yaml:"bits"`
}

// bitField parses Bits into the first bit and the width; width 0 means the
// whole value.
func (f *Field) bitField() (from, width int, err error) {
	if f.Bits == "" {
		return 0, 0, nil
	}
	lo, hi, isRange := strings.Cut(f.Bits, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b := a
	var err2 error
	if isRange {
		b, err2 = strconv.Atoi(strings.TrimSpace(hi))
	}
	if err1 != nil || err2 != nil || a < 0 || b < a || b >= 16*f.Type.Words() {
		return 0, 0, fmt.Errorf("%q is not a bit or bit range such as 5 or 4-7 within %d bits", f.Bits, 16*f.Type.Words())
	}
	return a, b - a + 1, nil
}

// Normalize fills defaults.
func (f *Field) Normalize() {
	if f.Table == "" {
		f.Table = Holding
	}
	if f.Type == "" {
		f.Type = Uint16
	}
	if f.Order == "" {
		f.Order = ABCD
	}
	if f.Scale == 0 {
		f.Scale = 1
	}
}

// Check reports what is wrong with a normalized field, as field name →
// message pairs for the caller to place.
func (f *Field) Check() map[string]string {
	bad := map[string]string{}
	if f.Table != Holding && f.Table != Input {
		bad["table"] = fmt.Sprintf("%q is not holding or input", f.Table)
	}
	if f.Type.Words() == 0 {
		bad["type"] = fmt.Sprintf("%q is not one of uint16, int16, uint32, int32, float32, float64", f.Type)
	}
	switch f.Order {
	case ABCD, CDAB, BADC, DCBA:
	default:
		bad["order"] = fmt.Sprintf("%q is not one of ABCD, CDAB, BADC, DCBA", f.Order)
	}
	if int(f.Address)+f.Type.Words() > 0x10000 {
		bad["address"] = fmt.Sprintf("%d + %d words runs past the register space", f.Address, f.Type.Words())
	}
	if math.IsNaN(f.Scale) || math.IsInf(f.Scale, 0) {
		bad["scale"] = "must be a finite number"
	}
	if len(f.Range) != 0 && (len(f.Range) != 2 || !(f.Range[0] < f.Range[1])) {
		bad["range"] = "must be [min, max] with min < max"
	}
	if f.Bits != "" {
		if f.Type == Float32 || f.Type == Float64 {
			bad["bits"] = "bit fields need an integer type"
		} else if _, _, err := f.bitField(); err != nil {
			bad["bits"] = err.Error()
		}
	}
	return bad
}

// Decode turns the field's register words into a value and a verdict:
// bad is set with a reason for sentinels, NaN and values outside Range.
// words must hold exactly Type.Words() registers.
func (f *Field) Decode(words []uint16) (value float64, bad string) {
	raw, isInt := f.raw(words)
	if from, width, _ := f.bitField(); width > 0 {
		raw = float64((uint64(int64(raw)) >> from) & (1<<width - 1))
	}
	if isInt {
		for _, s := range f.Invalid {
			if int64(raw) == s || (f.Type.Words() == 1 && int64(uint16(int64(raw))) == s) {
				return f.scale(raw), fmt.Sprintf("sentinel 0x%X", s)
			}
		}
	}
	if math.IsNaN(raw) || math.IsInf(raw, 0) {
		return raw, "not a number"
	}
	v := f.scale(raw)
	if len(f.Range) == 2 && (v < f.Range[0] || v > f.Range[1]) {
		return v, fmt.Sprintf("%g outside %g…%g", v, f.Range[0], f.Range[1])
	}
	return v, ""
}

// AboveRange reports whether v, a value Decode marked bad, is bad because
// it is above the field's range — a measurement past the instrument's
// upper limit — rather than a sentinel, not a number or below the range.
func (f *Field) AboveRange(v float64) bool {
	if len(f.Range) != 2 || math.IsNaN(v) || math.IsInf(v, 0) || v <= f.Range[1] {
		return false
	}
	for _, s := range f.Invalid {
		if f.scale(float64(s)) == v || (f.Type.Words() == 1 && f.scale(float64(uint16(s))) == v) ||
			(f.Type.Words() == 1 && f.scale(float64(int16(uint16(s)))) == v) {
			return false
		}
	}
	return true
}

// scale applies scale and offset. A scale of 10^-k divides by 10^k, so 658 ×
// 0.1 is 65.8, not 65.80000000000001.
func (f *Field) scale(raw float64) float64 {
	v := raw * f.Scale
	if f.Scale != 0 && f.Scale < 1 {
		if inv := 1 / f.Scale; math.Abs(inv-math.Round(inv)) < 1e-9 {
			v = raw / math.Round(inv)
		}
	}
	return v + f.Offset
}

// raw assembles the words into the field's type, returning it as float64 and
// whether it is an integer type.
func (f *Field) raw(words []uint16) (float64, bool) {
	b := orderBytes(words, f.Order)
	switch f.Type {
	case Uint16:
		return float64(uint16(b >> 48)), true
	case Int16:
		return float64(int16(b >> 48)), true
	case Uint32:
		return float64(uint32(b >> 32)), true
	case Int32:
		return float64(int32(b >> 32)), true
	case Float32:
		return float64(math.Float32frombits(uint32(b >> 32))), false
	case Float64:
		return math.Float64frombits(b), false
	}
	panic("BUG: modbus: decode of unchecked type " + string(f.Type))
}

// orderBytes puts the bytes of words into big-endian order, left-aligned in
// a uint64.
func orderBytes(words []uint16, o Order) uint64 {
	n := len(words)
	ws := make([]uint16, n)
	copy(ws, words)
	if o == CDAB || o == DCBA { // low word first on the wire
		for i := 0; i < n/2; i++ {
			ws[i], ws[n-1-i] = ws[n-1-i], ws[i]
		}
	}
	if o == BADC || o == DCBA { // bytes swapped inside each register
		for i, w := range ws {
			ws[i] = w<<8 | w>>8
		}
	}
	var b uint64
	for i, w := range ws {
		b |= uint64(w) << (48 - 16*i)
	}
	return b
}
