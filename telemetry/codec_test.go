package telemetry

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// exampleBatch is the worked example of docs/wire.md.
func exampleBatch() *Batch {
	t0 := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	t1 := t0.Add(250 * time.Millisecond)
	return &Batch{
		Gateway: "farm-north", Site: "north", Stream: "s1", FirstSeq: 101, Committed: 100,
		Readings: []Reading{
			{Device: "soil-1", Metric: "soil_moisture", Value: 65.8, Unit: "%", Time: t0, Clock: ClockNTP},
			{Device: "soil-1", Metric: "soil_temperature", Value: -10.1, Unit: "°C", Time: t0, Clock: ClockNTP},
			{Device: "air-1", Metric: "air_humidity", Value: 120.5, Unit: "%", Time: t1, Quality: Bad, Clock: ClockNTP},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range []Codec{CodecRows, CodecRowsDeflate} {
		t.Run(c.String(), func(t *testing.T) {
			in := exampleBatch()
			in.Readings = append(in.Readings, Reading{Device: "d", Metric: "m", Value: math.NaN(), Quality: Bad,
				Time: time.Date(1999, 1, 1, 0, 0, 0, 1, time.UTC), Clock: ClockUnsynced})
			data, err := Encode(in, c)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if !math.IsNaN(out.Readings[3].Value) {
				t.Fatalf("NaN did not survive: %v", out.Readings[3].Value)
			}
			out.Readings[3].Value, in.Readings[3].Value = 0, 0
			if !reflect.DeepEqual(in, out) {
				t.Fatalf("round trip changed the batch:\n in %+v\nout %+v", in, out)
			}
		})
	}
}

// TestWorkedExample keeps docs/wire.md honest: the hex dump printed there must
// be what Encode produces for exampleBatch.
func TestWorkedExample(t *testing.T) {
	data, err := Encode(exampleBatch(), CodecRows)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/wire.md")
	if err != nil {
		t.Fatal(err)
	}
	dump := hexLines(data)
	if !strings.Contains(string(doc), dump) {
		t.Fatalf("docs/wire.md does not contain the worked example; it should read:\n%s", dump)
	}
}

func hexLines(b []byte) string {
	var s strings.Builder
	for i := 0; i < len(b); i += 16 {
		end := min(i+16, len(b))
		s.WriteString(strings.TrimSpace(strings.Join(strings.Fields(hex.Dump(b[i:end])[10:58]), " ")))
		s.WriteByte('\n')
	}
	return s.String()
}

// reseal recomputes the trailing checksum after a test has edited a frame.
func reseal(b []byte) []byte {
	b = b[:len(b)-4]
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

func TestDecodeRefuses(t *testing.T) {
	good, err := Encode(exampleBatch(), CodecRows)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte {
		return f(bytes.Clone(good))
	}
	// Offsets in the CodecRows example: 4 gateway len, 5.. "farm-north",
	// 15 site len, 21 stream len, 22.. "s1", 24 first seq, 25 committed, 26 count.
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"magic", edit(func(b []byte) []byte { b[0] = 'X'; return reseal(b) }), "does not start with"},
		{"version", edit(func(b []byte) []byte { b[2] = 9; return reseal(b) }), "format version 9"},
		{"codec", edit(func(b []byte) []byte { b[3] = 77; return reseal(b) }), "unknown codec 77"},
		{"checksum", edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), "checksum"},
		{"flipped bit", edit(func(b []byte) []byte { b[40] ^= 0x10; return b }), "checksum"},
		{"truncated", edit(func(b []byte) []byte { return reseal(b[:len(b)-2]) }), "cut short"},
		{"trailing", edit(func(b []byte) []byte { return reseal(append(b[:len(b)-4], 0, 0, 0, 0, 0)) }), "left after"},
		{"count zero", edit(func(b []byte) []byte { b[26] = 0; return reseal(b) }), "count 0"},
		{"count too high", edit(func(b []byte) []byte { b[26] = 4; return reseal(b) }), "bytes left for 4 readings"},
		{"committed not below first", edit(func(b []byte) []byte { b[25] = 101; return reseal(b) }), "committed 101"},
		{"bad gateway", edit(func(b []byte) []byte { b[5] = '/'; return reseal(b) }), "not allowed"},
		{"string past end", edit(func(b []byte) []byte { b[21] = 200; return reseal(b) }), "past the end"},
		{"too large", make([]byte, MaxBatchBytes+1), "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.in)
			if err == nil {
				t.Fatal("decoded; want an error")
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	tests := []struct {
		name string
		mod  func(b *Batch)
		want string
	}{
		{"no readings", func(b *Batch) { b.Readings = nil }, "no readings and no events"},
		{"seq 0", func(b *Batch) { b.FirstSeq, b.Committed = 0, 0 }, "first sequence is 0"},
		{"good NaN", func(b *Batch) { b.Readings[0].Value = math.Inf(1) }, "cannot be good"},
		{"no time", func(b *Batch) { b.Readings[0].Time = time.Time{} }, "time is not set"},
		{"bad metric", func(b *Batch) { b.Readings[0].Metric = "a b" }, "not allowed"},
		{"long unit", func(b *Batch) { b.Readings[0].Unit = strings.Repeat("x", 17) }, "longer than"},
		{"bad quality", func(b *Batch) { b.Readings[0].Quality = 3 }, "quality(3)"},
		{"bad clock", func(b *Batch) { b.Readings[0].Clock = 9 }, "clock(9)"},
	}
	for _, tc := range tests {
		b := exampleBatch()
		tc.mod(b)
		if _, err := Encode(b, CodecRows); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestCompression(t *testing.T) {
	// A minute of 50 series sampled every 10 s: deflate must pay for itself.
	b := &Batch{Gateway: "gw", Stream: "s", FirstSeq: 1}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 6; i++ {
		for s := 0; s < 50; s++ {
			b.Readings = append(b.Readings, Reading{Device: "dev" + string(rune('a'+s%10)), Metric: "metric_" + string(rune('a'+s/10)),
				Value: float64(200+s) / 10, Unit: "°C", Time: t0.Add(time.Duration(i) * 10 * time.Second)})
		}
	}
	raw, err := Encode(b, CodecRows)
	if err != nil {
		t.Fatal(err)
	}
	small, err := Encode(b, CodecRowsDeflate)
	if err != nil {
		t.Fatal(err)
	}
	if len(small) >= len(raw)/2 {
		t.Fatalf("deflate %d bytes vs raw %d: expected at least 2x", len(small), len(raw))
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range []Codec{CodecRows, CodecRowsDeflate} {
		data, err := Encode(exampleBatch(), c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("FW\x01\x02"))
	withEvents := exampleBatch()
	withEvents.Events = exampleEvents()
	for _, c := range []Codec{CodecItems, CodecItemsDeflate} {
		data, err := Encode(withEvents, c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// At the expansion limits, and past them.
	many := exampleBatch()
	for len(many.Readings) < MaxReadings {
		many.Readings = append(many.Readings, many.Readings[len(many.Readings)%3])
	}
	if data, err := Encode(many, CodecRowsDeflate); err == nil {
		f.Add(data)
	} else {
		f.Fatal(err)
	}
	f.Add(rowsFrame(MaxReadings+1, exampleBatch().Readings))
	f.Add(deflateBomb(f, MaxBodyBytes+1))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if b.Len() > MaxReadings {
			t.Fatalf("decoded %d items, more than %d", b.Len(), MaxReadings)
		}
		// Whatever decodes must encode again and decode to the same batch.
		again, err := Encode(b, CodecRows)
		if err != nil {
			t.Fatalf("decoded batch does not encode: %v", err)
		}
		b2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if b2.Len() != b.Len() || len(b2.Events) != len(b.Events) || b2.Gateway != b.Gateway || b2.FirstSeq != b.FirstSeq {
			t.Fatalf("round trip differs")
		}
	})
}

// TestBacklogFlag: a backlog batch carries its flag in a version 2
// envelope; a plain batch keeps version 1; unknown flags are refused.
func TestBacklogFlag(t *testing.T) {
	b := exampleBatch()
	plain, err := Encode(b, CodecRowsDeflate)
	if err != nil {
		t.Fatal(err)
	}
	b.Backlog = true
	data, err := Encode(b, CodecRowsDeflate)
	if err != nil {
		t.Fatal(err)
	}
	if plain[2] != FormatVersion || data[2] != FormatVersionFlags || data[4] != flagBacklog {
		t.Fatalf("versions %d, %d; flags byte %#x", plain[2], data[2], data[4])
	}
	got, err := Decode(data)
	if err != nil || !got.Backlog || len(got.Readings) != 3 {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if got, _ := Decode(plain); got.Backlog {
		t.Fatal("a plain batch decoded as backlog")
	}
	for _, flags := range []byte{0, 0x80} {
		bad := bytes.Clone(data)
		bad[4] = flags
		if _, err := Decode(reseal(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("flags %#x: %v, want malformed", flags, err)
		}
	}
}
