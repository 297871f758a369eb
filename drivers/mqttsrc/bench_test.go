package mqttsrc

import (
	"os"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// soilMapper is the example ChirpStack soil-sensor profile's mapping.
func soilMapper(b testing.TB) *Mapper {
	const file = soilProfileFile
	data, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	var p testProfile
	if err := yamlconf.Decode(file, data, &p); err != nil {
		b.Fatal(err)
	}
	p.MQTT.Normalize()
	return NewMapper(*p.MQTT, gatewayClock)
}

// BenchmarkMapChirpStack maps one ChirpStack v4 uplink (1.2 KB, six
// readings) per iteration. Run with -cpu 1 for messages per second per core.
func BenchmarkMapChirpStack(b *testing.B) {
	mp := soilMapper(b)
	payload := []byte(readFile(b, "chirpstack/lse01-up.json"))
	topic := "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/a84041000181c0e1/event/up"
	now := time.Now()
	if n := len(mp.Map(topic, payload, now).Readings); n != 6 {
		b.Fatalf("%d readings; want 6", n)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		mp.Map(topic, payload, now)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkMapChirpStackParallel is the same on every core at once, sharing
// one Mapper as a Source's callers would not (it runs one per source).
func BenchmarkMapChirpStackParallel(b *testing.B) {
	mp := soilMapper(b)
	payload := []byte(readFile(b, "chirpstack/lse01-up.json"))
	topic := "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/a84041000181c0e1/event/up"
	now := time.Now()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mp.Map(topic, payload, now)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
