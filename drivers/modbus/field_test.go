package modbus

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestFieldDecode(t *testing.T) {
	f32 := math.Float32bits(21.5) // 0x41AC0000
	hi, lo := uint16(f32>>16), uint16(f32)
	tests := []struct {
		name  string
		f     Field
		words []uint16
		want  float64
		bad   string
	}{
		{"uint16 scaled", Field{Type: Uint16, Scale: 0.1}, []uint16{0x0292}, 65.8, ""},
		{"int16 negative", Field{Type: Int16, Scale: 0.1}, []uint16{0xFF9B}, -10.1, ""},
		{"int16 byte swapped", Field{Type: Int16, Scale: 0.1, Order: BADC}, []uint16{0x9BFF}, -10.1, ""},
		{"uint32 ABCD", Field{Type: Uint32}, []uint16{0x0001, 0x87D5}, 100309, ""},
		{"uint32 CDAB", Field{Type: Uint32, Order: CDAB}, []uint16{0x87D5, 0x0001}, 100309, ""},
		{"uint32 BADC", Field{Type: Uint32, Order: BADC}, []uint16{0x0100, 0xD587}, 100309, ""},
		{"uint32 DCBA", Field{Type: Uint32, Order: DCBA}, []uint16{0xD587, 0x0100}, 100309, ""},
		{"int32", Field{Type: Int32, Scale: 0.001}, []uint16{0xFFFF, 0xFC18}, -1, ""},
		{"float32 ABCD", Field{Type: Float32}, []uint16{hi, lo}, 21.5, ""},
		{"float32 CDAB", Field{Type: Float32, Order: CDAB}, []uint16{lo, hi}, 21.5, ""},
		{"float64", Field{Type: Float64}, []uint16{0x4035, 0x8000, 0, 0}, 21.5, ""},
		{"offset", Field{Type: Int16, Scale: 0.5, Offset: -40}, []uint16{100}, 10, ""},
		{"range low", Field{Type: Int16, Scale: 0.1, Range: []float64{-40, 80}}, []uint16{0xFE0C}, -50, "outside"},
		{"range high", Field{Type: Uint16, Scale: 0.1, Range: []float64{0, 100}}, []uint16{1205}, 120.5, "outside"},
		{"sentinel uint16", Field{Type: Uint16, Invalid: []int64{0xFFFF}}, []uint16{0xFFFF}, 65535, "sentinel 0xFFFF"},
		{"sentinel int16 as 0xFFFF", Field{Type: Int16, Invalid: []int64{0xFFFF}}, []uint16{0xFFFF}, -1, "sentinel"},
		{"sentinel 0x7FFF", Field{Type: Int16, Scale: 0.1, Invalid: []int64{0x7FFF}}, []uint16{0x7FFF}, 3276.7, "sentinel 0x7FFF"},
		{"NaN", Field{Type: Float32}, []uint16{0x7FC0, 0}, math.NaN(), "not a number"},
		{"bit set", Field{Type: Uint16, Bits: "5"}, []uint16{0x0020}, 1, ""},
		{"bit clear", Field{Type: Uint16, Bits: "5"}, []uint16{0xFFDF}, 0, ""},
		{"bit range", Field{Type: Uint16, Bits: "4-7"}, []uint16{0x0A5F}, 5, ""},
		{"bit of a negative int16", Field{Type: Int16, Bits: "15"}, []uint16{0x8000}, 1, ""},
		{"bit of uint32 high word", Field{Type: Uint32, Bits: "16-19"}, []uint16{0x0003, 0x0000}, 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.Normalize()
			if bad := f.Check(); len(bad) != 0 {
				t.Fatalf("field does not check: %v", bad)
			}
			got, bad := f.Decode(tc.words)
			if !(got == tc.want || math.IsNaN(got) && math.IsNaN(tc.want)) {
				t.Errorf("value = %v, want %v", got, tc.want)
			}
			if (tc.bad == "") != (bad == "") || !strings.Contains(bad, tc.bad) {
				t.Errorf("bad = %q, want %q", bad, tc.bad)
			}
		})
	}
}

// TestAboveRange: of the values Decode marks bad, only those above the
// range are above it (HJ 212's T); a sentinel that happens to scale above
// the range is a sentinel.
func TestAboveRange(t *testing.T) {
	tests := []struct {
		name  string
		f     Field
		words []uint16
		want  bool
	}{
		{"above", Field{Type: Uint16, Scale: 0.1, Range: []float64{0, 100}}, []uint16{1205}, true},
		{"below", Field{Type: Int16, Scale: 0.1, Range: []float64{-40, 80}}, []uint16{0xFE0C}, false},
		{"within", Field{Type: Uint16, Scale: 0.1, Range: []float64{0, 100}}, []uint16{500}, false},
		{"no range", Field{Type: Uint16}, []uint16{0xFFFF}, false},
		{"sentinel above the range", Field{Type: Int16, Scale: 0.1, Range: []float64{0, 100}, Invalid: []int64{0x7FFF}}, []uint16{0x7FFF}, false},
		{"sentinel as unsigned", Field{Type: Int16, Range: []float64{-10, 10}, Invalid: []int64{-1}}, []uint16{0xFFFF}, false},
		{"NaN", Field{Type: Float32, Range: []float64{0, 100}}, []uint16{0x7FC0, 0}, false},
		{"infinity", Field{Type: Float32, Range: []float64{0, 100}}, []uint16{0x7F80, 0}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.Normalize()
			v, _ := f.Decode(tc.words)
			if got := f.AboveRange(v); got != tc.want {
				t.Errorf("AboveRange(%v) = %v, want %v", v, got, tc.want)
			}
		})
	}
}

func TestFieldCheck(t *testing.T) {
	tests := []struct {
		f    Field
		keys []string
	}{
		{Field{Type: "uint8"}, []string{"type"}},
		{Field{Order: "ACBD"}, []string{"order"}},
		{Field{Table: "coils"}, []string{"table"}},
		{Field{Address: 0xFFFF, Type: Uint32}, []string{"address"}},
		{Field{Range: []float64{5, 1}}, []string{"range"}},
		{Field{Range: []float64{5}}, []string{"range"}},
		{Field{Scale: math.Inf(1)}, []string{"scale"}},
		{Field{Bits: "16"}, []string{"bits"}},
		{Field{Bits: "7-3"}, []string{"bits"}},
		{Field{Type: Float32, Bits: "1"}, []string{"bits"}},
	}
	for _, tc := range tests {
		f := tc.f
		f.Normalize()
		bad := f.Check()
		var keys []string
		for k := range bad {
			keys = append(keys, k)
		}
		if !reflect.DeepEqual(keys, tc.keys) {
			t.Errorf("Check(%+v) = %v, want keys %v", tc.f, bad, tc.keys)
		}
	}
}

func TestPlan(t *testing.T) {
	mk := func(specs ...any) []Field {
		var fs []Field
		for i := 0; i < len(specs); i += 2 {
			f := Field{Address: uint16(specs[i].(int)), Type: specs[i+1].(Type)}
			f.Normalize()
			fs = append(fs, f)
		}
		return fs
	}
	type req struct {
		addr, count int
		fields      []int
	}
	tests := []struct {
		name   string
		fields []Field
		gap    int
		want   []req
	}{
		{"contiguous", mk(0, Uint16, 1, Int16, 2, Uint16), 0, []req{{0, 3, []int{0, 1, 2}}}},
		{"unsorted", mk(2, Uint16, 0, Uint16, 1, Uint16), 0, []req{{0, 3, []int{1, 2, 0}}}},
		{"gap too wide", mk(6, Uint16, 0x12, Uint16, 0x13, Int16), 10, []req{{6, 1, []int{0}}, {0x12, 2, []int{1, 2}}}},
		{"gap read through", mk(6, Uint16, 0x12, Uint16, 0x13, Int16), 12, []req{{6, 14, []int{0, 1, 2}}}},
		{"32-bit", mk(0, Int16, 1, Uint32, 3, Uint32), 0, []req{{0, 5, []int{0, 1, 2}}}},
		{"32-bit gap", mk(0, Int16, 2, Uint32), 0, []req{{0, 1, []int{0}}, {2, 2, []int{1}}}},
		{"125 limit", mk(0, Uint16, 124, Uint16, 125, Uint16), 200, []req{{0, 125, []int{0, 1}}, {125, 1, []int{2}}}},
		{"overlap", mk(0, Uint32, 1, Uint16), 0, []req{{0, 2, []int{0, 1}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []req
			for _, r := range Plan(tc.fields, tc.gap, 0) {
				got = append(got, req{int(r.Address), int(r.Count), r.Fields})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Plan = %v, want %v", got, tc.want)
			}
		})
	}
	// Input and holding registers never share a request.
	fs := mk(0, Uint16, 1, Uint16)
	fs[1].Table = Input
	if n := len(Plan(fs, 10, 0)); n != 2 {
		t.Errorf("tables merged: %d requests", n)
	}
}

func TestReplayRTU(t *testing.T) {
	req := []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x03, 0x05, 0xCB}
	resp := []byte{0x01, 0x03, 0x06, 0x02, 0x92, 0xFF, 0x9B, 0x03, 0xE8, 0xD8, 0x0F}
	words, err := ReplayRTU(1, Holding, 0, 3, req, resp)
	if err != nil || !reflect.DeepEqual(words, []uint16{0x0292, 0xFF9B, 0x03E8}) {
		t.Fatalf("ReplayRTU = %x, %v", words, err)
	}
	bad := []struct {
		name string
		unit uint8
		resp []byte
		want string
	}{
		{"wrong request", 2, resp, "client sent 02 03"},
		{"crc", 1, append(append([]byte{}, resp[:10]...), 0x00), "CRC mismatch"},
		{"wrong unit", 1, []byte{0x02, 0x03, 0x06, 0x02, 0x92, 0xFF, 0x9B, 0x03, 0xE8, 0xCC, 0xFF}, "unit 2 answered"},
		{"wrong function", 1, []byte{0x01, 0x04, 0x06, 0x02, 0x92, 0xFF, 0x9B, 0x03, 0xE8, 0x99, 0xE9}, "function 3 answered with 4"},
		{"exception", 1, []byte{0x01, 0x83, 0x02, 0xC0, 0xF1}, "exception 2 (illegal data address)"},
		{"short", 1, []byte{0x01, 0x03, 0x06, 0x02, 0x92, 0xE9, 0x8F}, ""},
	}
	for _, tc := range bad {
		_, err := ReplayRTU(tc.unit, Holding, 0, 3, req, tc.resp)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}
