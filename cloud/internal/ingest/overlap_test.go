package ingest

import (
	"slices"
	"testing"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

func TestTrimCovered(t *testing.T) {
	// A batch of seqs 10…17: readings 10…15 (values 10…15), events 16, 17.
	batch := func() *telemetry.Batch {
		b := &telemetry.Batch{Gateway: "gw", FirstSeq: 10}
		for v := 10; v <= 15; v++ {
			b.Readings = append(b.Readings, telemetry.Reading{Device: "d", Metric: "m", Value: float64(v)})
		}
		b.Events = []telemetry.Event{{Kind: "e16"}, {Kind: "e17"}}
		return b
	}
	for _, c := range []struct {
		name     string
		commit   store.Commit
		readings []float64
		events   []string
		trimmed  int
	}{
		{"nothing covered", store.Commit{Through: 9}, []float64{10, 11, 12, 13, 14, 15}, []string{"e16", "e17"}, 0},
		{"head stored", store.Commit{Through: 12}, []float64{13, 14, 15}, []string{"e16", "e17"}, 3},
		{"middle in another batch", store.Commit{Through: 5, Above: []store.Span{{First: 12, Last: 13}}},
			[]float64{10, 11, 14, 15}, []string{"e16", "e17"}, 2},
		{"tail and an event", store.Commit{Through: 5, Above: []store.Span{{First: 15, Last: 16}}},
			[]float64{10, 11, 12, 13, 14}, []string{"e17"}, 2},
		{"all, in two spans", store.Commit{Through: 11, Above: []store.Span{{First: 12, Last: 20}}},
			nil, nil, 8},
		{"span after the batch", store.Commit{Through: 5, Above: []store.Span{{First: 18, Last: 30}}},
			[]float64{10, 11, 12, 13, 14, 15}, []string{"e16", "e17"}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := batch()
			if n := trimCovered(b, c.commit); n != c.trimmed {
				t.Errorf("trimmed %d, want %d", n, c.trimmed)
			}
			var vs []float64
			for _, r := range b.Readings {
				vs = append(vs, r.Value)
			}
			var es []string
			for _, e := range b.Events {
				es = append(es, e.Kind)
			}
			if !slices.Equal(vs, c.readings) || !slices.Equal(es, c.events) {
				t.Errorf("left readings %v events %v, want %v %v", vs, es, c.readings, c.events)
			}
		})
	}
}
