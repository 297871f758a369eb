package telemetry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// genSeries is a series the random gateway reads.
type genSeries struct {
	device, metric, unit string
	exp                  int
	level                int64
}

func randomSeries(rng *rand.Rand) []*genSeries {
	units := []string{"", "%", "°C", "µS/cm", "hPa"}
	seen := map[[3]string]bool{}
	var out []*genSeries
	for n := 1 + rng.IntN(12); len(out) < n; {
		s := &genSeries{device: fmt.Sprintf("d%d", rng.IntN(5)), metric: fmt.Sprintf("m%d", rng.IntN(6)),
			unit: units[rng.IntN(len(units))], exp: rng.IntN(4), level: rng.Int64N(20001) - 10000}
		if k := [3]string{s.device, s.metric, s.unit}; !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

// randomValue is mostly a sensor's next decimal, sometimes anything a float
// can be.
func randomValue(rng *rand.Rand, s *genSeries) (float64, Quality) {
	q := Quality(rng.IntN(3))
	switch rng.IntN(16) {
	case 0:
		return math.Float64frombits(0x7ff8000000000000 | rng.Uint64N(1<<51)), Bad // NaN, with a payload
	case 1:
		return math.Inf(1 - 2*rng.IntN(2)), Quality(1 + rng.IntN(2))
	case 2:
		return rng.Float64() * 1e300, q
	case 3:
		return 5e-324 * float64(rng.IntN(1000)), q
	case 4:
		return math.Copysign(0, -1), q
	case 5:
		for {
			if v := math.Float64frombits(rng.Uint64()); finite(v) {
				return v, q
			}
		}
	case 6:
		s.exp = min(s.exp+1, 9) // more decimals from now on
	}
	s.level += rng.Int64N(11) - 5
	if rng.IntN(40) == 0 {
		s.level = rng.Int64N(1<<40) - 1<<39 // a jump
	}
	return scaledValue(s.level, int8(s.exp)), q
}

// randomBatch is 1 to 120 readings of the series in any order, at times
// regular, identical, backwards or anywhere in int64, maybe with events.
func randomBatch(rng *rand.Rand, series []*genSeries, b *Batch) {
	b.Readings, b.Events = nil, nil
	b.Backlog = rng.IntN(4) == 0
	t := rng.Int64N(1<<62) - 1<<61
	if rng.IntN(10) == 0 {
		t = math.MinInt64 + rng.Int64N(1e9)
	}
	step := []int64{0, 1, 1e3, 20e6, 60e9, -7}[rng.IntN(6)]
	n := 1 + rng.IntN(120)
	if rng.IntN(8) == 0 {
		n = 0
	}
	for i := range n {
		s := series[rng.IntN(len(series))]
		if rng.IntN(2) == 0 {
			s = series[i%len(series)]
		}
		v, q := randomValue(rng, s)
		if rng.IntN(3) > 0 {
			t += step + rng.Int64N(1000)
		}
		if rng.IntN(50) == 0 {
			t = int64(rng.Uint64())
		}
		b.Readings = append(b.Readings, Reading{Device: s.device, Metric: s.metric, Unit: s.unit, Value: v,
			Time: time.Unix(0, t).UTC(), Quality: q, Clock: ClockQuality(rng.IntN(6))})
	}
	if n == 0 || rng.IntN(5) == 0 {
		for range 1 + rng.IntN(3) {
			b.Events = append(b.Events, Event{Device: "reader", Kind: EventTag, Key: fmt.Sprint(rng.IntN(1e6)),
				Time: time.Unix(0, rng.Int64()).UTC(), Clock: ClockNTP, Attrs: map[string]string{"state": "present"},
				Values: map[string]float64{"count": float64(rng.IntN(100)), "duration_s": rng.Float64()}})
		}
	}
}

// message is a batch on its way: the bytes, what the encoder said, and the
// original.
type message struct {
	data []byte
	sent CompactSent
	b    *Batch
}

// TestCompactDelivery runs random gateways over a link that loses,
// duplicates and reorders batches and acks, and a cloud that sometimes
// forgets everything. Every batch decodes to exactly what was sent; every
// batch decodes against the versions the gateway had seen confirmed alone
// (so an unconfirmed definition is never referred to); a forgetful cloud
// is answered with a resync.
func TestCompactDelivery(t *testing.T) {
	seen := map[string]int{}
	defer func() {
		for _, what := range []string{"refer", "define", "scratch", "resync", "duplicate", "exception", "events", "backlog"} {
			if seen[what] == 0 {
				t.Errorf("no %s in any trial: %v", what, seen)
			}
		}
	}()
	for trial := range 150 {
		t.Run(fmt.Sprint(trial), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(trial), 5))
			series := randomSeries(rng)
			b := &Batch{Gateway: "gw-1", Site: "site", Stream: "s-1", FirstSeq: 1}
			if rng.IntN(2) == 0 {
				b.Site = ""
			}
			enc := NewCompactEncoder(b.Gateway, b.Site, b.Stream)
			cl := &cloud{gateway: b.Gateway}
			var confirmed MemoryContexts // what the gateway has seen acknowledged
			var inflight []*message
			forgot, defs := false, 0 // forgot: the cloud forgot since the last Reset
			encode := func(orig *Batch) *message {
				data, sent, err := enc.Encode(orig)
				if err != nil {
					t.Fatalf("encode: %v", err)
				}
				seen[[]string{"refer", "define", "scratch"}[data[8+int(data[2]-1)]&3]]++
				if orig.Backlog {
					seen["backlog"]++
				}
				if len(orig.Events) > 0 {
					seen["events"]++
				}
				got, _, err := DecodeCompact(context.Background(), data, b.Gateway, &confirmed)
				if err != nil {
					t.Fatalf("batch %d does not decode against the confirmed versions alone: %v", orig.FirstSeq, err)
				}
				if err := sameBatch(orig, got); err != nil {
					t.Fatalf("batch %d: %v", orig.FirstSeq, err)
				}
				return &message{data: data, sent: sent, b: orig}
			}
			for step := 0; step < 40; step++ {
				switch r := rng.IntN(20); {
				case r < 9 || len(inflight) == 0:
					randomBatch(rng, series, b)
					if rng.IntN(6) == 0 {
						series = append(series, randomSeries(rng)...)
					}
					orig := *b
					inflight = append(inflight, encode(&orig))
					b.FirstSeq += uint64(b.Len())
					b.Committed = b.FirstSeq - 1 - uint64(rng.IntN(int(b.FirstSeq)))
				case r == 9:
					i := rng.IntN(len(inflight))
					inflight = slices.Delete(inflight, i, i+1) // lost
				case r == 10 && rng.IntN(3) == 0:
					cl = &cloud{gateway: b.Gateway} // the cloud forgets
					forgot = true
				default:
					i := rng.IntN(len(inflight))
					m := inflight[i]
					got, def, err := DecodeCompact(context.Background(), m.data, b.Gateway, &cl.ctxs)
					if errors.Is(err, ErrUnknownContext) && forgot {
						// Resync: forget the context, encode what is unacknowledged again.
						forgot = false
						seen["resync"]++
						enc.Reset()
						confirmed = MemoryContexts{}
						for k, old := range inflight {
							inflight[k] = encode(old.b)
						}
						continue
					}
					if err != nil {
						t.Fatalf("step %d: batch %d: %v", step, m.b.FirstSeq, err)
					}
					if err := sameBatch(m.b, got); err != nil {
						t.Fatalf("step %d: batch %d: %v", step, m.b.FirstSeq, err)
					}
					if def != nil {
						cl.ctxs.Put(def)
						defs++
					}
					if rng.IntN(4) > 0 {
						inflight = slices.Delete(inflight, i, i+1)
					} else {
						seen["duplicate"]++ // delivered again later
					}
					for _, r := range m.b.Readings {
						if _, ok := scaled(r.Value, 9); !ok {
							seen["exception"]++
						}
					}
					if rng.IntN(4) > 0 { // the ack arrives
						enc.Confirm(m.sent)
						if def != nil && enc.Confirmed() != nil && enc.Confirmed().Version == def.Version {
							confirmed.Put(def)
						}
					}
				}
			}
			if defs == 0 {
				t.Fatal("nothing was defined")
			}
		})
	}
}
