package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
)

// upTopic is where farm-north publishes its batches.
const upTopic = "fieldwatch/v1/farm-north/up"

// publishBytes is the size on the wire of an MQTT 3.1.1 QoS 1 PUBLISH of
// payload bytes on topic: the fixed header byte, the remaining length
// (1 to 4 bytes), the topic with its 2-byte length and the 2-byte packet
// id. (MQTT 5 adds a property length byte.)
func publishBytes(topic string, payload int) int {
	rem := 2 + len(topic) + 2 + payload
	n := 1 + rem
	for {
		n++
		if rem < 128 {
			return n
		}
		rem >>= 7
	}
}

func TestPublishBytes(t *testing.T) {
	for _, tc := range []struct{ payload, want int }{{0, 33}, {96, 33 + 96}, {97, 34 + 97}, {16352, 34 + 16352}, {16353, 35 + 16353}} {
		if got := publishBytes(upTopic, tc.payload); got != tc.want {
			t.Errorf("payload %d: %d bytes, want %d", tc.payload, got, tc.want)
		}
	}
}

// Timestamps of the live data. benchBatch stamps each reading on its own
// (a poll per series, jittered to the microsecond); the gateway's Modbus
// poller stamps all readings of one request with one time.Now() (to the
// nanosecond), which probeStamped imitates: the five metrics of a probe
// share its first reading's time, plus nanoseconds when ns is set.
func probeStamped(b *Batch, ns bool) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range b.Readings {
		if i%5 == 0 && ns {
			b.Readings[i].Time = b.Readings[i].Time.Add(time.Duration(rng.IntN(1000)))
		}
		b.Readings[i].Time = b.Readings[i/5*5].Time
	}
}

// liveRun is one simulated run of live minutes: each batch is encoded once
// the previous one is acknowledged.
type liveRun struct {
	first, firstWire  int // the first batch, which defines the dictionary
	payload, wire     int // every later batch
	defs, defBytes    int // later batches that defined a version, and their bytes
	refBytes, batches int
}

func runLive(tb testing.TB, batches []*Batch) liveRun {
	var r liveRun
	enc := NewCompactEncoder(batches[0].Gateway, batches[0].Site, batches[0].Stream)
	var ctxs MemoryContexts
	for k, b := range batches {
		data, sent, err := enc.Encode(b)
		if err != nil {
			tb.Fatal(err)
		}
		_, def, err := DecodeCompact(context.Background(), data, b.Gateway, &ctxs)
		if err != nil {
			tb.Fatal(err)
		}
		if def != nil {
			ctxs.Put(def)
		}
		enc.Confirm(sent)
		switch {
		case k == 0:
			r.first, r.firstWire = len(data), publishBytes(upTopic, len(data))
			continue
		case sent.Defined:
			r.defs++
			r.defBytes += len(data)
		default:
			r.refBytes += len(data)
		}
		r.payload += len(data)
		r.wire += publishBytes(upTopic, len(data))
		r.batches++
	}
	return r
}

// BenchmarkCompactLive: live batches of 50 readings (one per series), an
// hour or a day of them, with the first batch (the whole dictionary)
// reported apart and every later definition (rebases) counted in.
func BenchmarkCompactLive(b *testing.B) {
	for _, minutes := range []int{60, 1440} {
		for _, stamps := range []string{"reading", "probe-us", "probe-ns"} {
			b.Run(fmt.Sprintf("minutes=%d/stamped=%s", minutes, stamps), func(b *testing.B) {
				batches := liveBatches(minutes)
				for _, bt := range batches {
					if stamps != "reading" {
						probeStamped(bt, stamps == "probe-ns")
					}
				}
				var r liveRun
				for b.Loop() {
					r = runLive(b, batches)
				}
				n := float64(50 * r.batches)
				b.ReportMetric(float64(r.wire)/n, "wire-B/reading")
				b.ReportMetric(float64(r.payload)/n, "payload-B/reading")
				b.ReportMetric(float64(r.first), "first-B")
				b.ReportMetric(float64(r.firstWire)/50, "first-wire-B/reading")
				b.ReportMetric(float64(r.defs), "rebases")
				b.ReportMetric(float64(r.defBytes)/math.Max(1, float64(r.defs)), "rebase-B")
				b.ReportMetric(float64(r.refBytes)/float64(r.batches-r.defs), "ref-B")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// backlog returns an encoder and a cloud that have confirmed the first live
// minute, and the n readings after it as one backlog batch.
func backlog(tb testing.TB, n int) (*CompactEncoder, *MemoryContexts, *Batch) {
	all := benchBatch(50 + n)
	first := *all
	first.Readings = all.Readings[:50]
	enc := NewCompactEncoder(all.Gateway, all.Site, all.Stream)
	ctxs := &MemoryContexts{}
	data, sent, err := enc.Encode(&first)
	if err != nil {
		tb.Fatal(err)
	}
	_, def, err := DecodeCompact(context.Background(), data, all.Gateway, ctxs)
	if err != nil {
		tb.Fatal(err)
	}
	ctxs.Put(def)
	enc.Confirm(sent)
	rest := *all
	rest.Readings, rest.FirstSeq, rest.Backlog = all.Readings[50:], all.FirstSeq+50, true
	return enc, ctxs, &rest
}

// BenchmarkCompactEncode encodes batches of n readings against a confirmed
// context (a live minute, ten minutes, a backlog).
func BenchmarkCompactEncode(b *testing.B) {
	for _, n := range []int{50, 500, 5000} {
		b.Run(fmt.Sprintf("readings=%d", n), func(b *testing.B) {
			enc, _, batch := backlog(b, n)
			var size int
			b.ReportAllocs()
			for b.Loop() {
				data, sent, err := enc.Encode(batch)
				if err != nil || sent.Defined {
					b.Fatal(err, sent)
				}
				size = len(data)
			}
			b.ReportMetric(float64(size)/float64(n), "payload-B/reading")
			b.ReportMetric(float64(publishBytes(upTopic, size))/float64(n), "wire-B/reading")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}

// BenchmarkCompactDecode decodes them, the context coming from memory.
func BenchmarkCompactDecode(b *testing.B) {
	for _, n := range []int{50, 500, 5000} {
		b.Run(fmt.Sprintf("readings=%d", n), func(b *testing.B) {
			enc, ctxs, batch := backlog(b, n)
			data, _, err := enc.Encode(batch)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := DecodeCompact(context.Background(), data, batch.Gateway, ctxs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}

// BenchmarkCompactScratch is a batch defining the whole dictionary: the
// first after a gateway starts or a resync.
func BenchmarkCompactScratch(b *testing.B) {
	for _, n := range []int{50, 500, 5000} {
		b.Run(fmt.Sprintf("readings=%d", n), func(b *testing.B) {
			batch := benchBatch(n)
			var size int
			for b.Loop() {
				data, _, err := NewCompactEncoder(batch.Gateway, batch.Site, batch.Stream).Encode(batch)
				if err != nil {
					b.Fatal(err)
				}
				size = len(data)
			}
			b.ReportMetric(float64(size)/float64(n), "payload-B/reading")
			b.ReportMetric(float64(size), "payload-B")
		})
	}
}

// lineProtocol is b as the InfluxDB store writes it (cloud/internal/store/
// influx): measurement = metric; tags gateway, device, site, unit; fields
// value, quality, clock; nanosecond times.
func lineProtocol(b *Batch) []byte {
	var sb strings.Builder
	for _, r := range b.Readings {
		p := write.NewPointWithMeasurement(r.Metric).AddTag("gateway", b.Gateway).AddTag("device", r.Device).SetTime(r.Time)
		if b.Site != "" {
			p.AddTag("site", b.Site)
		}
		if r.Unit != "" {
			p.AddTag("unit", r.Unit)
		}
		if finite(r.Value) {
			p.AddField("value", r.Value)
		}
		p.AddField("quality", r.Quality.String()).AddField("clock", r.Clock.String())
		write.PointToLineProtocolBuffer(p, &sb, time.Nanosecond)
	}
	return []byte(sb.String())
}

// BenchmarkLineProtocolGzip is the comparison: the same readings as line
// protocol, gzipped per batch.
func BenchmarkLineProtocolGzip(b *testing.B) {
	for _, n := range []int{50, 500} {
		b.Run(fmt.Sprintf("readings=%d", n), func(b *testing.B) {
			lp := lineProtocol(benchBatch(n))
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				zw := gzip.NewWriter(&buf)
				_, _ = zw.Write(lp)
				_ = zw.Close()
			}
			b.ReportMetric(float64(len(lp))/float64(n), "raw-B/reading")
			b.ReportMetric(float64(buf.Len())/float64(n), "payload-B/reading")
			b.ReportMetric(float64(publishBytes(upTopic, buf.Len()))/float64(n), "wire-B/reading")
		})
	}
}
