package sl651

import (
	"encoding/hex"
	"testing"
)

func BenchmarkDecodeReport(b *testing.B) {
	in, _ := hex.DecodeString(hexFrames[7].hex) // 34 hourly
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		f, err := Decode(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ParseReport(f, cst); err != nil {
			b.Fatal(err)
		}
	}
}
