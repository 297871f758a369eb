package sim

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
)

// ProfileDevice answers with the register map of a firmware profile, each
// field wandering slowly inside its valid range. Its encoder is written here,
// independently of drivers/modbus's decoder, so that comparing what a client
// decoded with what was served checks the decoder.
type ProfileDevice struct {
	Profile *profiles.Profile
	Seed    int64
	// Env, if set, gives known metrics realistic values (Plausible);
	// Probe distinguishes devices of one kind.
	Env   *Environment
	Probe int
}

// Registers implements Device (holding registers).
func (p *ProfileDevice) Registers(now time.Time) map[uint16]uint16 {
	return p.table(modbus.Holding, now)
}

// InputRegisters implements InputDevice.
func (p *ProfileDevice) InputRegisters(now time.Time) map[uint16]uint16 {
	return p.table(modbus.Input, now)
}

func (p *ProfileDevice) table(t modbus.Table, now time.Time) map[uint16]uint16 {
	out := map[uint16]uint16{}
	for _, f := range p.Profile.Modbus.Fields {
		if f.Table != t || f.Bits != "" {
			continue
		}
		for i, w := range encode(f, p.Value(f, now)) {
			out[f.Address+uint16(i)] = w
		}
	}
	// Bit fields share a register: leave what is there, set their bits.
	for _, f := range p.Profile.Modbus.Fields {
		if f.Table == t && f.Bits != "" {
			if _, ok := out[f.Address]; !ok {
				out[f.Address] = 0
			}
		}
	}
	return out
}

// Value is the engineering value field f has at now: a slow sine inside its
// range, different per field and seed.
func (p *ProfileDevice) Value(f modbus.Field, now time.Time) float64 {
	lo, hi := 0.0, 100.0
	if len(f.Range) == 2 {
		lo, hi = f.Range[0], f.Range[1]
	}
	if p.Env != nil {
		if f.Metric == "wind_direction_sector" { // as many sectors as the range has
			d, _ := p.Env.Plausible("wind_direction", "°", p.Probe, now)
			n := hi - lo + 1
			return math.Mod(math.Round(d/360*n), n)
		}
		if v, ok := p.Env.Plausible(f.Metric, f.Unit, p.Probe, now); ok {
			if len(f.Range) == 2 {
				v = math.Max(lo, math.Min(hi, v))
			}
			return v
		}
	}
	h := fnv.New64a()
	h.Write([]byte(f.Metric))
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(p.Seed))
	h.Write(b[:])
	phase := float64(h.Sum64()%1000) / 1000 * 2 * math.Pi
	x := 0.5 + 0.3*math.Sin(2*math.Pi*float64(now.Unix()%3600)/3600+phase)
	return lo + (hi-lo)*x
}

// encode turns an engineering value into the field's register words:
// (value − offset) / scale, rounded, in the field's type and word order.
func encode(f modbus.Field, v float64) []uint16 {
	scale := f.Scale
	if scale == 0 {
		scale = 1
	}
	raw := (v - f.Offset) / scale
	var bytes []byte
	switch f.Type {
	case modbus.Int16:
		bytes = binary.BigEndian.AppendUint16(nil, uint16(int16(math.Round(raw))))
	case modbus.Uint32:
		bytes = binary.BigEndian.AppendUint32(nil, uint32(math.Round(raw)))
	case modbus.Int32:
		bytes = binary.BigEndian.AppendUint32(nil, uint32(int32(math.Round(raw))))
	case modbus.Float32:
		bytes = binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(raw)))
	case modbus.Float64:
		bytes = binary.BigEndian.AppendUint64(nil, math.Float64bits(raw))
	default:
		bytes = binary.BigEndian.AppendUint16(nil, uint16(math.Round(raw)))
	}
	// bytes are ABCD…; lay them out in the field's order.
	n := len(bytes) / 2
	words := make([]uint16, n)
	for i := range words {
		words[i] = binary.BigEndian.Uint16(bytes[2*i:])
	}
	order := f.Order
	if order == "" {
		order = modbus.ABCD
	}
	if order == modbus.CDAB || order == modbus.DCBA {
		for i := 0; i < n/2; i++ {
			words[i], words[n-1-i] = words[n-1-i], words[i]
		}
	}
	if order == modbus.BADC || order == modbus.DCBA {
		for i, w := range words {
			words[i] = w<<8 | w>>8
		}
	}
	return words
}
