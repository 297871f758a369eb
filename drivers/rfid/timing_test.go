package rfid

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// The benchmarks feed one frame per Feed call (a serial read usually
// returns about one frame), or 1000 frames per call, of a tag held at the
// reader, or of 1000 different tags; an op is one frame.

func BenchmarkEM4100(b *testing.B) {
	many := make([][]byte, 1000)
	for i := range many {
		many[i] = em(fmt.Sprintf("01%08X", i+1))
	}
	benchDecoder(b, EM4100RDM6300, [][]byte{em("14008EC793")}, many)
}

func BenchmarkFDXBText(b *testing.B) {
	many := make([][]byte, 1000)
	for i := range many {
		many[i] = []byte(fmt.Sprintf("LA 982 %012d\r\n", i+1))
	}
	benchDecoder(b, FDXBText, [][]byte{[]byte("LA 982 000001088420\r\n")}, many)
}

func BenchmarkWiegand(b *testing.B) {
	benchDecoder(b, Wiegand26Text, [][]byte{[]byte("00101101000000001010001000\r\n")}, nil)
}

func benchDecoder(b *testing.B, proto Protocol, one, many [][]byte) {
	run := func(name string, frames [][]byte, perCall int) {
		if frames == nil {
			return
		}
		b.Run(name, func(b *testing.B) {
			var chunks [][]byte
			for i := 0; i < len(frames); i += perCall {
				chunks = append(chunks, bytes.Join(frames[i:min(i+perCall, len(frames))], nil))
			}
			if perCall > 1 && len(frames) == 1 {
				chunks = [][]byte{bytes.Repeat(frames[0], perCall)}
			}
			d := newTest(proto)
			now := t0
			b.ReportAllocs()
			b.SetBytes(int64(len(frames[0])))
			b.ResetTimer()
			start := time.Now()
			n := 0
			for n < b.N {
				for _, c := range chunks {
					d.Feed(c, now)
					n += max(1, perCall)
				}
				now = now.Add(time.Millisecond)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "frames/s")
			if d.Stats().Frames == 0 {
				b.Fatal("no frames accepted")
			}
		})
	}
	run("one-tag/frame-per-call", one, 1)
	run("one-tag/1000-per-call", one, 1000)
	run("1000-tags/frame-per-call", many, 1)
	if many == nil {
		return
	}
	// Every read a new visit: a "present" event per frame, and the
	// "gone" events from a Tick after each round of 1000 tags.
	b.Run("new-visit-per-frame", func(b *testing.B) {
		d := newTest(proto)
		now := t0
		b.ReportAllocs()
		start := time.Now()
		n := 0
		for n < b.N {
			for _, f := range many {
				d.Feed(f, now)
				n++
			}
			now = now.Add(3 * time.Second)
			d.Tick(now)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "frames/s")
	})
}
