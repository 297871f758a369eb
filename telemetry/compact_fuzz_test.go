package telemetry

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"strings"
	"testing"
)

const fixedID = 0x5eed0001

// fixedContexts is a cloud's memory for the refusal table and the fuzzer:
// version 1 of farm-north's context fixedID, two series.
func fixedContexts() *MemoryContexts {
	var m MemoryContexts
	m.Put(&CompactContext{Gateway: "farm-north", Site: "north", Stream: "s1", ID: fixedID, Version: 1,
		Series: []SeriesDef{{"soil-1", "soil_moisture", "%", 1}, {"soil-1", "soil_temperature", "°C", 1}},
		Ref:    []int64{658, -101}, Epoch: 1795240800e9})
	return &m
}

// frame builds a compact batch field by field; parts is the bit stream in
// order, each part a writer of one column.
type frame struct {
	cv, first, gap, count uint64
	def                   []byte
	parts                 []func(w *bitWriter)
	tail                  []byte
}

func (f frame) bytes() []byte {
	out := binary.BigEndian.AppendUint32([]byte("FW\x01\x05"), fixedID)
	for _, v := range []uint64{f.cv, f.first, f.gap, f.count} {
		out = binary.AppendUvarint(out, v)
	}
	out = append(out, f.def...)
	var w bitWriter
	for _, p := range f.parts {
		p(&w)
	}
	out = append(append(out, w.bytes()...), f.tail...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crcTable))
}

// The parts of one good reading of series 0 against version 1: 65.8,
// good, NTP, at the epoch.
var (
	noEvents   = func(w *bitWriter) { w.write(0, 1) }
	series0    = func(w *bitWriter) { w.uvarint(1); w.uvarint(0) }
	goodNTP    = func(w *bitWriter) { w.uvarint(1); w.write(4, 5) }
	atEpoch    = func(w *bitWriter) { w.uvarint(1); w.write(0, 5); w.varint(0) }
	noExc      = func(w *bitWriter) { w.uvarint(0) }
	atRef      = func(w *bitWriter) { w.write(0, 8); w.varint(0) }
	goodReader = []func(w *bitWriter){noEvents, series0, goodNTP, atEpoch, noExc, atRef}
)

// good returns the frame of one good reading with part i replaced.
func good(i int, p func(w *bitWriter)) frame {
	f := frame{cv: 1 << 2, first: 101, gap: 0, count: 1, parts: append([]func(*bitWriter){}, goodReader...)}
	if p != nil {
		f.parts[i] = p
	}
	return f
}

// scratchDef is the byte part of a definition from scratch of n series with
// the given names.
func scratchDef(gateway string, n uint64, names ...string) []byte {
	return defPart(gateway, 0, n, names...)
}

// defPart is the byte part of a definition relative to version base (0:
// from scratch).
func defPart(gateway string, base, n uint64, names ...string) []byte {
	out := appendString(appendString(appendString(nil, gateway), "north"), "s1")
	if base > 0 {
		out = binary.AppendUvarint(out, base)
	}
	out = binary.AppendUvarint(out, n)
	for _, s := range names {
		out = appendString(append(out, 0), s)
	}
	return out
}

// defined returns a frame defining version 2 from scratch with one series
// (device, metric, unit), the given exponent and reference columns, and one
// reading at its reference.
func defined(gateway string, names []string, exps, refs func(w *bitWriter)) frame {
	f := good(0, nil)
	f.cv = 2<<2 | kindScratch
	f.def = scratchDef(gateway, uint64(len(names)/3), names...)
	f.parts = append([]func(*bitWriter){func(w *bitWriter) { w.varint(0) }, exps, refs}, f.parts...)
	return f
}

var (
	col0    = func(w *bitWriter) { w.write(0, 8); w.varint(0) }
	oneName = []string{"soil-2", "soil_moisture", "%"}
)

func TestDecodeCompactRefuses(t *testing.T) {
	tests := []struct {
		name string
		f    frame
		want string // "" decodes; else in the message
		is   error
	}{
		{"good", good(0, nil), "", nil},
		{"good definition", defined("farm-north", oneName, func(w *bitWriter) { w.write(0, 8); w.varint(1) },
			func(w *bitWriter) { w.write(0, 8); w.varint(658) }), "", nil},
		{"version 0", frame{cv: 0, first: 1, count: 1}, "context version 0", ErrMalformed},
		{"kind 3", frame{cv: 1<<2 | 3, first: 1, count: 1}, "kind 3", ErrMalformed},
		{"committed gap", frame{cv: 1 << 2, first: 5, gap: 5, count: 1}, "committed gap 5", ErrMalformed},
		{"count 0", frame{cv: 1 << 2, first: 1, count: 0}, "count 0", ErrMalformed},
		{"count too high", frame{cv: 1 << 2, first: 1, count: MaxReadings + 1}, "count 20001", ErrTooLarge},
		{"unknown version", func() frame { f := good(0, nil); f.cv = 9 << 2; return f }(), "version 9", ErrUnknownContext},
		{"events past count", good(0, func(w *bitWriter) { w.write(1, 1); w.uvarint(2) }), "2 events in a batch of 1", ErrMalformed},
		{"no series runs", good(1, func(w *bitWriter) { w.uvarint(0) }), "0 series runs", ErrMalformed},
		{"series outside", good(1, func(w *bitWriter) { w.uvarint(1); w.uvarint(2) }), "outside the dictionary of 2", ErrMalformed},
		{"series run too long", good(1, func(w *bitWriter) { w.uvarint(2); w.uvarint(1); w.uvarint(0) }), "2 series runs for 1", ErrMalformed},
		{"unknown clock", good(2, func(w *bitWriter) { w.uvarint(1); w.write(7<<2, 5) }), "clock(7)", ErrMalformed},
		{"no time runs", good(3, func(w *bitWriter) { w.uvarint(0) }), "0 time runs", ErrMalformed},
		{"time unit", good(3, func(w *bitWriter) { w.uvarint(1); w.write(19, 5); w.varint(0) }), "10^19", ErrMalformed},
		{"exceptions past count", good(4, func(w *bitWriter) { w.uvarint(2) }), "2 exceptions in 1", ErrMalformed},
		{"exception past end", good(4, func(w *bitWriter) { w.uvarint(1); w.uvarint(1); w.write(0, 64) }), "past reading", ErrMalformed},
		{"column mode", good(5, func(w *bitWriter) { w.write(0x50, 8); w.varint(0) }), "unknown column mode 0x50", ErrMalformed},
		{"column width", good(5, func(w *bitWriter) { w.write(66, 8); w.varint(0) }), "unknown column mode 0x42", ErrMalformed},
		{"column past end", good(5, func(w *bitWriter) { w.write(64, 8); w.varint(0) }), "do not fit", ErrMalformed},
		{"value too large", good(5, func(w *bitWriter) { w.write(0, 8); w.varint(1 << 53) }), "outside ±2^53", ErrMalformed},
		{"padding", func() frame {
			f := good(0, nil)
			f.parts = append(f.parts, func(w *bitWriter) { w.write(1, 1) })
			return f
		}(), "padding", ErrMalformed},
		{"trailing", func() frame { f := good(0, nil); f.tail = []byte{0}; return f }(), "1 bytes left", ErrMalformed},
		{"cut short", good(5, func(w *bitWriter) { w.write(0, 8) }), "past the end", ErrMalformed},
		{"too many series", func() frame {
			f := defined("farm-north", oneName, col0, col0)
			f.def = scratchDef("farm-north", MaxSeries+1)
			return f
		}(), "4097 series", ErrMalformed},
		{"unknown name", func() frame {
			f := defined("farm-north", oneName, col0, col0)
			f.def = append(scratchDef("farm-north", 1), 7)
			return f
		}(), "device: name 7 of 0", ErrMalformed},
		{"long name", defined("farm-north", []string{strings.Repeat("d", 300), "m", ""}, col0, col0), "over 255", ErrMalformed},
		{"bad name", defined("farm-north", []string{"a b", "m", ""}, col0, col0), "not allowed", ErrMalformed},
		{"twice", defined("farm-north", []string{"d", "m", "", "d", "m", ""}, col0, col0), "defined twice", ErrMalformed},
		{"exponent", defined("farm-north", oneName, func(w *bitWriter) { w.write(0, 8); w.varint(19) }, col0), "exponent 0+19", ErrMalformed},
		{"reference", defined("farm-north", oneName, col0, func(w *bitWriter) { w.write(0, 8); w.varint(1<<53 + 1) }), "reference", ErrMalformed},
		{"base not older", func() frame {
			f := defined("farm-north", oneName, col0, col0)
			f.cv = 1<<2 | kindDefine
			f.def = defPart("farm-north", 1, 3, oneName...)
			return f
		}(), "relative to version 1", ErrMalformed},
		{"unknown base", func() frame {
			f := defined("farm-north", oneName, col0, col0)
			f.cv = 3<<2 | kindDefine
			f.def = defPart("farm-north", 2, 3, oneName...)
			return f
		}(), "version 2", ErrUnknownContext},
		{"other gateway", defined("farm-south", oneName, col0, col0), "farm-south", ErrGatewayMismatch},
		{"redefined", func() frame {
			f := defined("farm-north", oneName, col0, col0)
			f.cv = 1<<2 | kindScratch
			return f
		}(), "other content", ErrUnknownContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _, err := DecodeCompact(context.Background(), tc.f.bytes(), "farm-north", fixedContexts())
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "" && b.Readings[0].Value != 65.8:
				t.Fatalf("value %v", b.Readings[0].Value)
			case tc.want == "":
			case err == nil:
				t.Fatal("decoded; want an error")
			case !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q; want %v mentioning %q", err, tc.is, tc.want)
			}
		})
	}
}

// fuzzSeeds are compact batches of every kind against fixedContexts: the
// refusal table's frames and real encodings of batches with exceptions,
// events, repeats and the backlog flag.
func fuzzSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{good(0, nil).bytes(), defined("farm-north", oneName, col0, col0).bytes()}
	b := exampleBatch()
	b.Stream = "s1"
	enc := NewCompactEncoder(b.Gateway, b.Site, b.Stream)
	enc.id = fixedID
	enc.confirmed, _ = fixedContexts().CompactContext(context.Background(), "farm-north", fixedID, 1)
	enc.next = 2
	b.Readings = b.Readings[:2]
	for _, mod := range []func(){
		func() {},
		func() { b.Readings[1].Value, b.Readings[1].Quality = math.NaN(), Bad },
		func() { b.Events, b.Backlog = exampleEvents(), true },
		func() { b.Readings = append(b.Readings, b.Readings...) },
		func() { b.Readings = append(b.Readings, exampleBatch().Readings[2]) },
	} {
		mod()
		data, _, err := enc.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	return seeds
}

// FuzzDecodeCompact: no input panics or is refused with an unclassified
// error, and whatever decodes encodes again and decodes to the same batch.
func FuzzDecodeCompact(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	// At the expansion limit, and one past it.
	f.Add(compactBomb(MaxReadings))
	f.Add(compactBomb(MaxReadings + 1))
	ctxs := fixedContexts()
	f.Fuzz(func(t *testing.T, data []byte) {
		checkCompact(t, data, ctxs)
		if len(data) >= 8 { // and past the checksum, into the columns
			checkCompact(t, reseal(bytes.Clone(data)), ctxs)
		}
	})
}

// checkCompact decodes data: it must be refused with a classified error, or
// encode again and decode to the same batch.
func checkCompact(t *testing.T, data []byte, ctxs Contexts) {
	b, def, err := DecodeCompact(context.Background(), data, "farm-north", ctxs)
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownContext) && !errors.Is(err, ErrGatewayMismatch) {
			t.Fatalf("unclassified error: %v", err)
		}
		return
	}
	if b.Len() > MaxReadings {
		t.Fatalf("decoded %d items, more than %d", b.Len(), MaxReadings)
	}
	if def != nil {
		if err := def.Validate(); err != nil {
			t.Fatalf("defined an invalid context: %v", err)
		}
	}
	enc := NewCompactEncoder(b.Gateway, b.Site, b.Stream)
	again, _, err := enc.Encode(b)
	if err != nil {
		t.Fatalf("decoded batch does not encode: %v", err)
	}
	b2, _, err := DecodeCompact(context.Background(), again, b.Gateway, &MemoryContexts{})
	if err != nil {
		t.Fatalf("re-encoded batch does not decode: %v", err)
	}
	if err := sameBatch(b, b2); err != nil {
		t.Fatalf("round trip differs: %v", err)
	}
}

// TestFuzzSeeds: the seeds decode, so the fuzzer starts from real batches.
func TestFuzzSeeds(t *testing.T) {
	for i, s := range fuzzSeeds(t) {
		if _, _, err := DecodeCompact(context.Background(), s, "farm-north", fixedContexts()); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
	}
}
