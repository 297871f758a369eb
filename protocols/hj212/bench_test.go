package hj212

import "testing"

func BenchmarkDecode(b *testing.B) {
	in := []byte(standardFrames[6].frame) // C16_2051, 325 bytes of data
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}
