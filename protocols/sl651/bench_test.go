package sl651

import (
	"encoding/hex"
	"testing"
)

func BenchmarkDecodeReport(b *testing.B) {
	in, _ := hex.DecodeString(hexFrames[7].hex) // 34 hourly
	b.SetBytes(int64(len(in)))
	var rep Report
	for b.Loop() {
		f, err := Decode(in)
		if err != nil {
			b.Fatal(err)
		}
		if rep, err = ParseReport(f, cst); err != nil {
			b.Fatal(err)
		}
	}
	// The hourly report's 28 values (docs/benchmarks.md), each decoded.
	if rep.Function != FnHourly || len(rep.Values) != 28 {
		b.Fatalf("decoded function %X with %d values, want 34 with 28", rep.Function, len(rep.Values))
	}
}
