package streams

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/test/sim"
)

// BenchmarkBuoyPipeline measures what the gateway spends on one stream
// device per sentence: the runner's line dating, the NMEA decoder and the
// append of the readings to the on-disk buffer (fsync off: the CPU, not the
// flash). The input is a simulated buoy's output (GNSS, wind, XDR, water
// temperature, waves) read in 64-byte chunks, as a serial port delivers
// it. It reports sentences per second on one core and, from the bytes per
// sentence, the share of one core that ten 9600-baud streams talking
// without pause would take.
func BenchmarkBuoyPipeline(b *testing.B) {
	buoy := &sim.BuoyStream{Env: sim.Environment{Seed: 1}, Lat: 35.95, Lon: 120.45, Met: "XDR", Waves: true, Seed: 1}
	start := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	var sb strings.Builder
	for i := range 100 {
		sb.Write(buoy.Next(start.Add(time.Duration(i) * time.Second)))
	}
	input := []byte(sb.String())
	sentences := strings.Count(sb.String(), "\n")
	buf, err := buffer.Open(buffer.Options{Dir: b.TempDir(), MaxBytes: 1 << 30, SegmentBytes: 64 << 20, Fsync: buffer.FsyncOff,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer buf.Close()
	sink := func(out stream.Output) error {
		if len(out.Readings) > 0 {
			if _, err := buf.Append(out.Readings); err != nil {
				return err
			}
		}
		if len(out.Events) > 0 {
			_, err := buf.AppendEvents(out.Events)
			return err
		}
		return nil
	}
	dec := decoder(b, "generic/met-buoy-gmx500-awac", "buoy-1", nil)
	r := NewRunner(Device{ID: "buoy-1", Decoder: dec, CharTime: serialport.Mode{Baud: 9600}.CharTime()}, sink,
		slog.New(slog.DiscardHandler), NewMetrics(prometheus.NewRegistry()))
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	now := start
	for b.Loop() {
		for off := 0; off < len(input); off += 64 {
			now = now.Add(time.Millisecond)
			if err := r.handle(nil, r.feed(input[off:min(off+64, len(input))], now)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if errs := dec.Stats().Errors; len(errs) != 0 {
		b.Fatalf("the input did not decode cleanly: %v", errs)
	}
	rate := float64(b.N) * float64(sentences) / b.Elapsed().Seconds()
	perStream := 960 / (float64(len(input)) / float64(sentences)) // 9600 baud 8N1 is 960 bytes/s
	b.ReportMetric(rate, "sentences/s")
	b.ReportMetric(100*10*perStream/rate, "%core-for-10-streams")
	b.ReportMetric(0, "ns/op")
}
