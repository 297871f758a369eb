package hj212

import "testing"

func BenchmarkDecode(b *testing.B) {
	in := []byte(standardFrames[6].frame) // C16_2051, 325 bytes of data
	b.SetBytes(int64(len(in)))
	var p Packet
	for b.Loop() {
		var err error
		if p, err = Decode(in); err != nil {
			b.Fatal(err)
		}
	}
	// What was decoded is the minute upload, every factor in it.
	if p.CN != CNMinute || len(p.CP.Factors()) == 0 {
		b.Fatalf("decoded %s with %d factors", p.CN, len(p.CP.Factors()))
	}
}
