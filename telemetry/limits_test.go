package telemetry

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"runtime/metrics"
	"strings"
	"testing"
)

// compactBomb is the audit's expanding batch: a compact batch of a few
// dozen bytes whose count readings are all series 0 and 1 of the fixed
// context at one time and at their references.
func compactBomb(count uint64) []byte {
	f := good(0, nil)
	f.count = count
	f.parts = append(f.parts, atRef) // the second column: value steps, all 0
	return f.bytes()
}

// rowsFrame is a rows batch (codec 1) whose header claims count items but
// whose body holds rs: the count is checked before the body is read.
func rowsFrame(count uint64, rs []Reading) []byte {
	out := []byte("FW\x01\x01")
	out = appendString(appendString(appendString(out, "farm-north"), "north"), "s1")
	out = binary.AppendUvarint(binary.AppendUvarint(binary.AppendUvarint(out, 1), 0), count)
	out = AppendRows(out, rs)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crcTable))
}

// deflateBomb is a codec 2 batch whose body inflates to n zero bytes.
func deflateBomb(t testing.TB, n int) []byte {
	out := []byte("FW\x01\x02")
	out = appendString(appendString(appendString(out, "farm-north"), "north"), "s1")
	out = binary.AppendUvarint(binary.AppendUvarint(binary.AppendUvarint(out, 1), 0), 1)
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(make([]byte, n))
	w.Close()
	out = append(out, buf.Bytes()...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crcTable))
}

// TestExpansionIsBounded: a batch may expand to MaxReadings items and no
// more, whatever its codec; what is larger is refused as too large (and
// malformed, for callers that only know that), naming the limit.
func TestExpansionIsBounded(t *testing.T) {
	ctxs := fixedContexts()
	decodeCompact := func(data []byte) (*Batch, error) {
		b, _, err := DecodeCompact(context.Background(), data, "farm-north", ctxs)
		return b, err
	}
	tests := []struct {
		name   string
		data   []byte
		decode func([]byte) (*Batch, error)
		want   int    // items decoded; 0: refused
		msg    string // in the refusal
	}{
		{"compact at the limit", compactBomb(MaxReadings), decodeCompact, MaxReadings, ""},
		{"compact one over", compactBomb(MaxReadings + 1), decodeCompact, 0, "count 20001 is outside 1..20000"},
		{"compact audit bomb", compactBomb(100_000), decodeCompact, 0, "count 100000"},
		{"rows one over", rowsFrame(MaxReadings+1, exampleBatch().Readings), Decode, 0, "count 20001"},
		{"deflate at the cap", deflateBomb(t, MaxBodyBytes), Decode, 0, "series count 0"}, // inflates, then malformed
		{"deflate past the cap", deflateBomb(t, MaxBodyBytes+1), Decode, 0, "inflates past 16777216 bytes"},
		{"payload too long", append(compactBomb(1), make([]byte, MaxBatchBytes)...), decodeCompact, 0, "more than 1048576"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.decode(tc.data)
			if tc.want > 0 {
				if err != nil || b.Len() != tc.want {
					t.Fatalf("decoded %v items, %v; want %d", b, err, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v; want malformed with %q", err, tc.msg)
			}
			if wantLarge := tc.name != "deflate at the cap"; errors.Is(err, ErrTooLarge) != wantLarge {
				t.Fatalf("error %v: too large is %v, want %v", err, !wantLarge, wantLarge)
			}
		})
	}
	if n := len(compactBomb(MaxReadings)); n > 40 {
		t.Fatalf("the bomb at the limit takes %d bytes; the test means a tiny batch", n)
	}
}

// TestBombRefusedBeforeAllocating: refusing the audit's compact bomb (a
// count of 100 000 in 34 bytes) allocates next to nothing, where decoding
// it would have taken about 10 MB. The figure is bytes allocated, counted by
// the runtime, not a time.
func TestBombRefusedBeforeAllocating(t *testing.T) {
	ctxs := fixedContexts()
	bomb := compactBomb(100_000)
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(sample)
	before := sample[0].Value.Uint64()
	for range 10 {
		if _, _, err := DecodeCompact(context.Background(), bomb, "farm-north", ctxs); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("bomb: %v", err)
		}
	}
	metrics.Read(sample)
	if per := (sample[0].Value.Uint64() - before) / 10; per > 64<<10 {
		t.Fatalf("refusing the bomb allocated %d bytes a time; want it refused before the readings are allocated", per)
	}
}
