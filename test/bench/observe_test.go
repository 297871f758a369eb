package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// observer listens on the broker beside the cloud: a gateway's batches on
// its up topic and the cloud's acks on its ack topic, each with the time it
// arrived. Everything is worked out afterwards, so the callbacks stay
// cheap.
type observer struct {
	gateway string
	mu      sync.Mutex
	ups     []arrival[[]byte]
	acks    []arrival[telemetry.Ack]
}

type arrival[T any] struct {
	at  time.Time
	msg T
}

func observe(b *testing.B, url, gateway string) *observer {
	o := &observer{gateway: gateway}
	c := testenv.MQTTClient(b, url, "bench-observer")
	for topic, f := range map[string]mqtt.MessageHandler{
		telemetry.UpTopic(gateway): func(_ mqtt.Client, m mqtt.Message) {
			at := time.Now()
			o.mu.Lock()
			o.ups = append(o.ups, arrival[[]byte]{at, m.Payload()})
			o.mu.Unlock()
		},
		telemetry.AckTopic(gateway): func(_ mqtt.Client, m mqtt.Message) {
			at := time.Now()
			a, err := telemetry.DecodeAck(m.Payload())
			if err != nil {
				b.Error(err)
				return
			}
			o.mu.Lock()
			o.acks = append(o.acks, arrival[telemetry.Ack]{at, a})
			o.mu.Unlock()
		},
	} {
		if tok := c.Subscribe(topic, 1, f); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("subscribe %s: %v", topic, tok.Error())
		}
	}
	return o
}

// drain is what the observer saw of a backlog drain.
type drain struct {
	start     time.Time // the first batch after connecting
	end       time.Time // the ack after which every backlog item was acknowledged
	backlog   uint64    // items sent as backlog: sequences 1 … backlog
	batches   [2]int    // batches seen: live, backlog (resends included)
	undecoded int       // batches the observer could not decode
	// live are the live readings acquired during the drain, acquisition to
	// ack; after, those acquired in the seconds after it.
	live, after []time.Duration
}

// acked reports whether the cloud has acknowledged every item through last.
func (o *observer) acked(last uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	var s ackedSet
	for _, a := range o.acks {
		s.add(a.msg)
	}
	return s.through() >= last
}

// analyse decodes every batch as the cloud does (compact contexts from
// the batches that define them), and matches live readings to the first
// ack that covers them.
func (o *observer) analyse() (drain, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var d drain
	if len(o.ups) == 0 {
		return d, fmt.Errorf("no batches seen")
	}
	d.start = o.ups[0].at
	var ctxs telemetry.MemoryContexts
	liveAt := map[uint64]time.Time{} // live item sequence → acquisition time
	for _, u := range o.ups {
		bt, def, err := telemetry.DecodeAny(context.Background(), u.msg, o.gateway, &ctxs)
		if err != nil {
			d.undecoded++
			continue
		}
		if def != nil {
			ctxs.Put(def)
		}
		if bt.Backlog {
			d.batches[1]++
			d.backlog = max(d.backlog, bt.LastSeq())
			continue
		}
		d.batches[0]++
		if len(bt.Events) > 0 {
			continue // only readings carry an acquisition time to measure from
		}
		for i, r := range bt.Readings {
			liveAt[bt.FirstSeq+uint64(i)] = r.Time
		}
	}
	// When each live item and the whole backlog were first acknowledged.
	ackedAt := map[uint64]time.Time{}
	pending := make([]uint64, 0, len(liveAt))
	for seq := range liveAt {
		pending = append(pending, seq)
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i] < pending[j] })
	var s ackedSet
	for _, a := range o.acks {
		s.add(a.msg)
		if d.end.IsZero() && d.backlog > 0 && s.through() >= d.backlog {
			d.end = a.at
		}
		n := 0
		for _, seq := range pending {
			if s.covers(seq) {
				ackedAt[seq] = a.at
				continue
			}
			pending[n] = seq
			n++
		}
		pending = pending[:n]
	}
	if d.end.IsZero() {
		return d, fmt.Errorf("backlog through %d never fully acknowledged", d.backlog)
	}
	for seq, t := range liveAt {
		at, ok := ackedAt[seq]
		switch {
		case !ok:
		case !t.After(d.end):
			d.live = append(d.live, at.Sub(t))
		default:
			d.after = append(d.after, at.Sub(t))
		}
	}
	return d, nil
}

// ackedSet is what the acks have covered: everything through the highest
// contiguous sequence, and the ranges above it.
type ackedSet struct {
	low    uint64      // every sequence ≤ low is acknowledged
	ranges [][2]uint64 // above low, unmerged
}

func (s *ackedSet) add(a telemetry.Ack) {
	if a.Resync {
		return
	}
	s.low = max(s.low, a.Through)
	s.ranges = append(s.ranges, [2]uint64{a.First, a.Last})
	for grown := true; grown; {
		grown = false
		n := 0
		for _, r := range s.ranges {
			if r[0] <= s.low+1 {
				if r[1] > s.low {
					s.low, grown = r[1], true
				}
				continue
			}
			s.ranges[n] = r
			n++
		}
		s.ranges = s.ranges[:n]
	}
}

func (s *ackedSet) through() uint64 { return s.low }

func (s *ackedSet) covers(seq uint64) bool {
	if seq <= s.low {
		return true
	}
	for _, r := range s.ranges {
		if r[0] <= seq && seq <= r[1] {
			return true
		}
	}
	return false
}

// percentile returns the p-th percentile (0–100) of ds, sorting ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[min(len(ds)-1, int(float64(len(ds))*p/100))]
}
