package telemetry

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchBatch is n readings over 50 soil and weather series, sampled once a
// minute, as a gateway on a farm produces them.
func benchBatch(n int) *Batch {
	b := &Batch{Gateway: "farm-north", Site: "north-farm", Stream: "s20261121-0123456789ab", FirstSeq: 1001, Committed: 1000}
	t0 := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	metrics := []struct{ name, unit string }{{"soil_moisture", "%"}, {"soil_temperature", "°C"}, {"soil_ec", "µS/cm"},
		{"air_temperature", "°C"}, {"air_humidity", "%"}}
	// Each series wanders in steps of the sensors' 0.1 resolution; polls
	// jitter by a few milliseconds.
	rng := rand.New(rand.NewPCG(1, 2))
	level := make([]float64, 50)
	for s := range level {
		level[s] = float64(100 + rng.IntN(300))
	}
	for i := 0; i < n; i++ {
		s := i % 50
		m := metrics[s%5]
		level[s] += float64(rng.IntN(5) - 2)
		jitter := time.Duration(rng.IntN(5000)) * time.Microsecond
		b.Readings = append(b.Readings, Reading{Device: fmt.Sprintf("probe-%02d", s/5), Metric: m.name, Unit: m.unit,
			Value: level[s] / 10, Time: t0.Add(time.Duration(i/50)*time.Minute + time.Duration(s)*20*time.Millisecond + jitter),
			Clock: ClockNTP})
	}
	return b
}

func BenchmarkEncode(b *testing.B) {
	for _, n := range []int{50, 500, 5000} {
		for _, c := range []Codec{CodecRows, CodecRowsDeflate} {
			b.Run(fmt.Sprintf("%s/readings=%d", c, n), func(b *testing.B) {
				batch := benchBatch(n)
				var size int
				var enc Encoder
				b.ReportAllocs()
				for b.Loop() {
					data, err := enc.Encode(batch, c)
					if err != nil {
						b.Fatal(err)
					}
					size = len(data)
				}
				b.ReportMetric(float64(size)/float64(n), "bytes/reading")
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{50, 500, 5000} {
		for _, c := range []Codec{CodecRows, CodecRowsDeflate} {
			b.Run(fmt.Sprintf("%s/readings=%d", c, n), func(b *testing.B) {
				data, err := Encode(benchBatch(n), c)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Decode(data); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
			})
		}
	}
}

// BenchmarkDeflateLevel compares compression levels on a live batch.
func BenchmarkDeflateLevel(b *testing.B) {
	defer func(l int) { deflateLevel = l }(deflateLevel)
	for _, level := range []int{1, 6, 9} {
		for _, n := range []int{50, 500} {
			b.Run(fmt.Sprintf("level=%d/readings=%d", level, n), func(b *testing.B) {
				deflateLevel = level
				batch := benchBatch(n)
				var enc Encoder
				var size int
				for b.Loop() {
					data, err := enc.Encode(batch, CodecRowsDeflate)
					if err != nil {
						b.Fatal(err)
					}
					size = len(data)
				}
				b.ReportMetric(float64(size)/float64(n), "bytes/reading")
			})
		}
	}
}
