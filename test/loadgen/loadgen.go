// Package loadgen is the benchmarks' load generator: gateways speaking the
// real protocol to the cloud over MQTT, as the gateway's uplink does.
package loadgen

import (
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// The load generator: gateways speaking the real protocol to the cloud, as
// the gateway's uplink does: a stream's batches published in sequence
// order, a few in flight, each claiming as committed only what the cloud
// has acknowledged (the highest sequence below which every batch has been
// acked, by an ack's range or its Through), compact batches defining their
// context inline until the cloud confirms it.

// Stream is the stream every generated gateway sends.
const Stream = "bench"

// Metric and Unit are the generated readings' metric and unit:
// one InfluxDB measurement for all of them.
const (
	Metric = "soil_moisture"
	Unit   = "%"
)

// Devices is how many devices each generated gateway reads.
const Devices = 25

// GatewayID names generated gateway g.
func GatewayID(g int) string { return fmt.Sprintf("bench-gw-%02d", g) }

// Reading is reading k of a generated gateway: its devices in turn,
// one reading a millisecond from t0, soil moisture in tenths of a percent.
// Every (gateway, device, time) is distinct, so every reading is a point of
// its own in InfluxDB.
func Reading(k int, t0 time.Time) telemetry.Reading {
	return telemetry.Reading{Device: fmt.Sprintf("dev-%02d", k%Devices), Metric: Metric, Unit: Unit,
		Value: float64(k%400) / 10, Time: t0.Add(time.Duration(k) * time.Millisecond), Quality: telemetry.Good,
		Clock: telemetry.ClockNTP}
}

// Split shares n readings among gateways: the first n%gateways
// gateways have one more.
func Split(n, gateways int) []int {
	per := make([]int, gateways)
	for g := range per {
		per[g] = n / gateways
		if g < n%gateways {
			per[g]++
		}
	}
	return per
}

// Batches makes each gateway's batches of up to perBatch readings,
// sequences from 1; perGateway[g] readings for gateway g.
func Batches(perGateway []int, perBatch int, t0 time.Time) [][]*telemetry.Batch {
	out := make([][]*telemetry.Batch, len(perGateway))
	for g, n := range perGateway {
		id := GatewayID(g)
		for first := 0; first < n; first += perBatch {
			b := &telemetry.Batch{Gateway: id, Stream: Stream, FirstSeq: uint64(first + 1)}
			for k := first; k < min(n, first+perBatch); k++ {
				b.Readings = append(b.Readings, Reading(k, t0))
			}
			out[g] = append(out[g], b)
		}
	}
	return out
}

// Result is what the gateways saw.
type Result struct {
	Lat      []time.Duration // publish to ack, per batch
	Readings int             // acknowledged
	Elapsed  time.Duration   // from the first publish to the last ack
}

// AckTimeout bounds each wait of a generated gateway for an ack.
const AckTimeout = 2 * time.Minute

// Run plays each gateway of batches (from Batches) against the
// broker at url, with inFlight batches unacknowledged at most, encoded with
// codec (CodecCompact: a CompactEncoder per gateway), until every batch is
// acknowledged. A missing ack, a resync request or an ack for another stream
// fails the benchmark.
func Run(b testing.TB, url string, batches [][]*telemetry.Batch, codec telemetry.Codec, inFlight int) Result {
	b.Helper()
	return RunURLs(b, []string{url}, batches, codec, inFlight)
}

// RunURLs is Run with the gateways spread over several brokers (the nodes
// of a cluster): gateway g connects to urls[g % len(urls)].
func RunURLs(b testing.TB, urls []string, batches [][]*telemetry.Batch, codec telemetry.Codec, inFlight int) Result {
	b.Helper()
	gws := make([]*loadGateway, len(batches))
	for g, bs := range batches {
		gws[g] = newLoadGateway(b, urls[g%len(urls)], bs, codec, inFlight)
	}
	var wg sync.WaitGroup
	t0 := time.Now()
	for _, gw := range gws {
		wg.Add(1)
		go func() { defer wg.Done(); gw.run() }()
	}
	wg.Wait()
	res := Result{Elapsed: time.Since(t0)}
	for _, gw := range gws {
		gw.client.Disconnect(100)
		gw.mu.Lock()
		if gw.err != nil {
			b.Errorf("%s: %v", gw.id, gw.err)
		}
		res.Lat = append(res.Lat, gw.lat...)
		res.Readings += gw.ackedReadings
		gw.mu.Unlock()
	}
	return res
}

// loadGateway is one generated gateway.
type loadGateway struct {
	id       string
	client   mqtt.Client
	batches  []*telemetry.Batch
	codec    telemetry.Codec
	enc      telemetry.Encoder
	slots    chan struct{} // one per batch in flight
	failed   chan struct{} // closed on the first error
	failOnce sync.Once

	mu            sync.Mutex
	cenc          *telemetry.CompactEncoder
	flights       map[uint64]flight // by first sequence
	acked         map[uint64]uint64 // acknowledged ranges above through: first → last
	through       uint64            // every sequence ≤ through is acknowledged
	lat           []time.Duration
	ackedReadings int
	err           error
}

type flight struct {
	last     uint64
	sent     time.Time
	readings int
	compact  telemetry.CompactSent
}

func newLoadGateway(b testing.TB, url string, batches []*telemetry.Batch, codec telemetry.Codec, inFlight int) *loadGateway {
	b.Helper()
	gw := &loadGateway{batches: batches, codec: codec, slots: make(chan struct{}, inFlight),
		failed: make(chan struct{}), flights: map[uint64]flight{}, acked: map[uint64]uint64{}}
	if len(batches) > 0 {
		gw.id = batches[0].Gateway
	}
	if codec == telemetry.CodecCompact {
		gw.cenc = telemetry.NewCompactEncoder(gw.id, "", Stream)
	}
	gw.client = testenv.MQTTClient(b, url, gw.id)
	tok := gw.client.Subscribe(telemetry.AckTopic(gw.id), 0, gw.onAck) // as the uplink does
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("%s cannot subscribe to its acks: %v", gw.id, tok.Error())
	}
	return gw
}

func (gw *loadGateway) fail(err error) {
	gw.failOnce.Do(func() {
		gw.mu.Lock()
		gw.err = err
		gw.mu.Unlock()
		close(gw.failed)
	})
}

// run sends every batch, then waits for the last acks.
func (gw *loadGateway) run() {
	for _, batch := range gw.batches {
		if !gw.acquire() {
			return
		}
		gw.mu.Lock()
		batch.Committed = min(gw.through, batch.FirstSeq-1)
		var data []byte
		var sent telemetry.CompactSent
		var err error
		if gw.cenc != nil {
			data, sent, err = gw.cenc.Encode(batch)
		} else {
			data, err = gw.enc.Encode(batch, gw.codec)
		}
		if err == nil {
			gw.flights[batch.FirstSeq] = flight{last: batch.LastSeq(), sent: time.Now(), readings: len(batch.Readings),
				compact: sent}
		}
		gw.mu.Unlock()
		if err != nil {
			gw.fail(err)
			return
		}
		gw.client.Publish(telemetry.UpTopic(gw.id), 1, false, data)
	}
	for range cap(gw.slots) { // every slot back: every batch acknowledged
		if !gw.acquire() {
			return
		}
	}
}

// acquire takes a slot for a batch, waiting at most AckTimeout for an ack
// to free one.
func (gw *loadGateway) acquire() bool {
	timer := time.NewTimer(AckTimeout)
	defer timer.Stop()
	select {
	case gw.slots <- struct{}{}:
		return true
	case <-gw.failed:
		return false
	case <-timer.C:
		gw.mu.Lock()
		missing := len(gw.flights)
		gw.mu.Unlock()
		gw.fail(fmt.Errorf("no ack for %v; %d batches unacknowledged", AckTimeout, missing))
		return false
	}
}

// onAck runs on paho's goroutine.
func (gw *loadGateway) onAck(_ mqtt.Client, m mqtt.Message) {
	a, err := telemetry.DecodeAck(m.Payload())
	switch {
	case err != nil:
		gw.fail(err)
		return
	case a.Resync:
		gw.fail(fmt.Errorf("the cloud asked to resync context %08x at %d", a.Context, a.First))
		return
	case a.Stream != Stream:
		gw.fail(fmt.Errorf("ack for stream %q", a.Stream))
		return
	}
	gw.mu.Lock()
	defer gw.mu.Unlock()
	f, ok := gw.flights[a.First]
	if !ok || a.Last != f.last {
		return // a duplicate ack
	}
	delete(gw.flights, a.First)
	gw.lat = append(gw.lat, time.Since(f.sent))
	gw.ackedReadings += f.readings
	if gw.cenc != nil {
		gw.cenc.Confirm(f.compact)
	}
	if a.First > gw.through {
		gw.acked[a.First] = a.Last
	}
	gw.through = max(gw.through, a.Through)
	for { // advance over the ranges now contiguous with through
		last, ok := gw.acked[gw.through+1]
		if !ok {
			break
		}
		delete(gw.acked, gw.through+1)
		gw.through = last
	}
	for first := range gw.acked {
		if first <= gw.through {
			delete(gw.acked, first) // covered by a Through
		}
	}
	<-gw.slots
}
