// Package storetest is the conformance suite every store.Store passes.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

var t0 = time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)

func reading(dev, metric string, v float64, at time.Duration) telemetry.Reading {
	return telemetry.Reading{Device: dev, Metric: metric, Value: v, Unit: "%", Time: t0.Add(at), Clock: telemetry.ClockNTP}
}

// Run runs the suite; open returns a fresh, empty store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	t.Run("write is idempotent and series reads back", func(t *testing.T) {
		s := open(t)
		var rs []telemetry.Reading
		for i := 0; i < 10; i++ {
			rs = append(rs, reading("soil-1", "soil_moisture", 30+float64(i)/10, time.Duration(i)*time.Minute))
		}
		for i := 0; i < 2; i++ { // a replayed batch
			if err := s.Write(ctx, "gw1", "north", rs); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Series(ctx, store.SeriesQuery{Gateway: "gw1", Device: "soil-1", Metric: "soil_moisture",
			From: t0, To: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 10 {
			t.Fatalf("%d samples after writing 10 twice", len(got))
		}
		for i, sm := range got {
			if sm.Value == nil || *sm.Value != rs[i].Value || !sm.Time.Equal(rs[i].Time) || sm.Unit != "%" || sm.Site != "north" {
				t.Fatalf("sample %d = %+v, want %+v", i, sm, rs[i])
			}
		}
	})
	t.Run("time range and limit", func(t *testing.T) {
		s := open(t)
		var rs []telemetry.Reading
		for i := 0; i < 20; i++ {
			rs = append(rs, reading("d", "m", float64(i), time.Duration(i)*time.Second))
		}
		if err := s.Write(ctx, "gw1", "", rs); err != nil {
			t.Fatal(err)
		}
		got, err := s.Series(ctx, store.SeriesQuery{Gateway: "gw1", Device: "d", Metric: "m",
			From: t0.Add(5 * time.Second), To: t0.Add(15 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 10 || *got[0].Value != 5 || *got[9].Value != 14 {
			t.Fatalf("range [5s,15s) gave %d samples from %v", len(got), values(got))
		}
		got, err = s.Series(ctx, store.SeriesQuery{Gateway: "gw1", Device: "d", Metric: "m", From: t0, To: t0.Add(time.Hour), Limit: 3})
		if err != nil || len(got) != 3 || *got[0].Value != 0 {
			t.Fatalf("limit 3 gave %v, %v", values(got), err)
		}
	})
	t.Run("averaged buckets", func(t *testing.T) {
		s := open(t)
		var rs []telemetry.Reading
		for i := 0; i < 6; i++ {
			rs = append(rs, reading("d", "m", float64(i), time.Duration(i)*10*time.Second))
		}
		rs[4].Quality = telemetry.Bad
		if err := s.Write(ctx, "gw1", "", rs); err != nil {
			t.Fatal(err)
		}
		got, err := s.Series(ctx, store.SeriesQuery{Gateway: "gw1", Device: "d", Metric: "m",
			From: t0, To: t0.Add(time.Minute), Every: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || *got[0].Value != 1 || *got[1].Value != 4 || !got[0].Time.Equal(t0) {
			t.Fatalf("30s means: %+v", got)
		}
		if got[0].Quality != telemetry.Good || got[1].Quality != telemetry.Bad {
			t.Fatalf("bucket quality %v %v, want good, bad", got[0].Quality, got[1].Quality)
		}
	})
	t.Run("aggregates equal those computed from what was written", func(t *testing.T) {
		s := open(t)
		// 1500 readings 37 s apart with values no formula predicts, every
		// 97th not finite (bad) and every 89th uncertain; one whole 10-minute
		// window (from 300 min) of bad readings only, which has no bucket.
		rng := rand.New(rand.NewPCG(13, 1))
		var rs []telemetry.Reading
		for i := 0; i < 1500; i++ {
			at := time.Duration(i) * 37 * time.Second
			r := reading("d", "m", math.Round(rng.NormFloat64()*1e4)/100, at)
			switch {
			case at >= 300*time.Minute && at < 310*time.Minute, i%97 == 0:
				r.Value, r.Quality = math.NaN(), telemetry.Bad
			case i%89 == 0:
				r.Quality = telemetry.Uncertain
			}
			rs = append(rs, r)
		}
		if err := s.Write(ctx, "gw1", "north", rs); err != nil {
			t.Fatal(err)
		}
		// From and To off the bucket grid: the first bucket starts before
		// From (its time is the bucket start) and the last is cut at To.
		// Widths of many samples a bucket and of at most one (more buckets
		// than a store may read one by one).
		from, to := t0.Add(3*time.Minute+7*time.Second), t0.Add(14*time.Hour+time.Second)
		for _, every := range []time.Duration{10 * time.Minute, 2 * time.Minute, 10 * time.Second} {
			type agg struct {
				sum, min, max float64
				n             int
				q             telemetry.Quality
			}
			want := map[time.Time]*agg{}
			var order []time.Time
			for _, r := range rs {
				if r.Time.Before(from) || !r.Time.Before(to) {
					continue
				}
				b := r.Time.Truncate(every)
				a := want[b]
				if a == nil {
					a = &agg{min: math.Inf(1), max: math.Inf(-1)}
					want[b] = a
					order = append(order, b)
				}
				a.q = max(a.q, r.Quality)
				if !math.IsNaN(r.Value) {
					a.sum += r.Value
					a.n++
					a.min, a.max = min(a.min, r.Value), max(a.max, r.Value)
				}
			}
			var buckets []time.Time
			for _, b := range order {
				if want[b].n > 0 {
					buckets = append(buckets, b)
				}
			}
			got, err := s.Series(ctx, store.SeriesQuery{Gateway: "gw1", Device: "d", Metric: "m", From: from, To: to, Every: every})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(buckets) || every == 10*time.Minute && len(buckets) != 84-1 {
				t.Fatalf("%v: %d buckets, want %d (84 windows of 10 minutes less the one of bad readings only)", every, len(got), len(buckets))
			}
			for i, sm := range got {
				w := want[buckets[i]]
				mean := w.sum / float64(w.n)
				if !sm.Time.Equal(buckets[i]) || sm.Value == nil || sm.Min == nil || sm.Max == nil ||
					math.Abs(*sm.Value-mean) > 1e-9*math.Max(1, math.Abs(mean)) || *sm.Min != w.min || *sm.Max != w.max ||
					sm.Count != w.n || sm.Quality != w.q || sm.Unit != "%" || sm.Site != "north" {
					t.Fatalf("%v: bucket %d = %s; want time %s mean %v min %v max %v count %d quality %v",
						every, i, describe(sm), buckets[i].Format(time.RFC3339), mean, w.min, w.max, w.n, w.q)
				}
			}
		}
		// Limit keeps the oldest buckets.
		got, err := s.Series(ctx, store.SeriesQuery{Gateway: "gw1", Device: "d", Metric: "m", From: from, To: to, Every: 10 * time.Minute, Limit: 5})
		if err != nil || len(got) != 5 || !got[4].Time.Equal(t0.Add(40*time.Minute)) {
			t.Fatalf("5 buckets: %d, %v", len(got), err)
		}
		// Raw samples carry no aggregates.
		raw, err := s.Series(ctx, store.SeriesQuery{Gateway: "gw1", Device: "d", Metric: "m", From: from, To: to, Limit: 3})
		if err != nil || len(raw) != 3 || raw[0].Count != 0 || raw[0].Min != nil || raw[0].Max != nil {
			t.Fatalf("raw samples: %+v, %v", raw, err)
		}
	})
	t.Run("pages of a series are what one read gives", func(t *testing.T) {
		s := open(t)
		var rs []telemetry.Reading
		for i := 0; i < 250; i++ {
			r := reading("d", "m", float64(i)*1.5, time.Duration(i)*time.Second)
			if i%50 == 7 {
				r.Value, r.Quality = math.NaN(), telemetry.Bad
			}
			rs = append(rs, r)
		}
		if err := s.Write(ctx, "gw1", "", rs); err != nil {
			t.Fatal(err)
		}
		var got []store.Sample
		from := t0
		for {
			page, err := s.Series(ctx, store.SeriesQuery{Gateway: "gw1", Device: "d", Metric: "m", From: from, To: t0.Add(time.Hour), Limit: 40})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if len(page) < 40 {
				break
			}
			from = page[len(page)-1].Time.Add(time.Nanosecond)
		}
		if len(got) != len(rs) {
			t.Fatalf("%d samples in pages of 40, want %d", len(got), len(rs))
		}
		for i, sm := range got {
			if !sm.Time.Equal(rs[i].Time) || (sm.Value == nil) != math.IsNaN(rs[i].Value) || sm.Value != nil && *sm.Value != rs[i].Value {
				t.Fatalf("sample %d = %s, want %v at %s", i, describe(sm), rs[i].Value, rs[i].Time)
			}
		}
	})
	t.Run("latest per series, bad and NaN kept", func(t *testing.T) {
		s := open(t)
		rs := []telemetry.Reading{
			reading("soil-1", "soil_moisture", 31, 0),
			reading("soil-1", "soil_moisture", 32, time.Minute),
			reading("soil-1", "soil_temperature", 12.5, time.Minute),
			reading("air-1", "air_humidity", math.NaN(), 2*time.Minute),
		}
		rs[2].Unit = "°C"
		rs[3].Quality = telemetry.Bad
		if err := s.Write(ctx, "gw1", "north", rs); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, "gw2", "", []telemetry.Reading{reading("x", "m", 1, 0)}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Latest(ctx, "gw1", t0.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		byKey := map[string]store.Sample{}
		for _, sm := range got {
			byKey[sm.Device+"/"+sm.Metric] = sm
		}
		if len(got) != 3 {
			t.Fatalf("latest of gw1: %d samples %+v, want 3", len(got), got)
		}
		if sm := byKey["soil-1/soil_moisture"]; sm.Value == nil || *sm.Value != 32 || sm.Gateway != "gw1" || sm.Site != "north" {
			t.Fatalf("soil_moisture latest = %+v", sm)
		}
		if sm := byKey["soil-1/soil_temperature"]; sm.Unit != "°C" || *sm.Value != 12.5 {
			t.Fatalf("soil_temperature latest = %+v", sm)
		}
		if sm := byKey["air-1/air_humidity"]; sm.Value != nil || sm.Quality != telemetry.Bad {
			t.Fatalf("bad NaN reading = %+v; want no value and quality bad", sm)
		}
		all, err := s.Latest(ctx, "", t0.Add(-time.Hour))
		if err != nil || len(all) != 4 {
			t.Fatalf("latest of all: %d, %v", len(all), err)
		}
		recent, err := s.Latest(ctx, "", t0.Add(90*time.Second))
		if err != nil || len(recent) != 1 || recent[0].Device != "air-1" {
			t.Fatalf("latest since 90s: %+v, %v", recent, err)
		}
	})
}

func describe(sm store.Sample) string {
	f := func(p *float64) string {
		if p == nil {
			return "none"
		}
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	return fmt.Sprintf("{time %s mean %s min %s max %s count %d quality %v unit %q site %q}",
		sm.Time.Format(time.RFC3339), f(sm.Value), f(sm.Min), f(sm.Max), sm.Count, sm.Quality, sm.Unit, sm.Site)
}

func values(ss []store.Sample) []float64 {
	var out []float64
	for _, s := range ss {
		if s.Value != nil {
			out = append(out, *s.Value)
		}
	}
	return out
}

// RunEvents is the events part of the suite.
func RunEvents(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	tag := func(key string, at time.Duration, state string, count float64) telemetry.Event {
		return telemetry.Event{Device: "gate", Kind: telemetry.EventTag, Key: key, Time: t0.Add(at), Clock: telemetry.ClockNTP,
			Attrs: map[string]string{"tag_type": "fdx-b", "state": state}, Values: map[string]float64{"count": count}}
	}
	s := open(t)
	// A tag seen, then the same event updated when it left; a second tag at
	// the same instant; a drift event of another device.
	if err := s.WriteEvents(ctx, "gw1", "north", []telemetry.Event{tag("982000000000001", 0, "present", 1),
		tag("982000000000002", 0, "present", 1)}); err != nil {
		t.Fatal(err)
	}
	drift := telemetry.Event{Device: "buoy", Kind: telemetry.EventDrift, Time: t0.Add(time.Minute), Clock: telemetry.ClockGPS,
		Attrs: map[string]string{"state": "drifting"}, Values: map[string]float64{"lat": 36.05, "lon": 120.4, "distance_m": 812}}
	if err := s.WriteEvents(ctx, "gw1", "north", []telemetry.Event{tag("982000000000001", 0, "gone", 97), drift}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteEvents(ctx, "gw2", "", []telemetry.Event{tag("x", 0, "present", 1)}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Events(ctx, store.EventQuery{Gateway: "gw1", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("gw1 has %d events, want 3 (the update replaced the first): %+v", len(all), all)
	}
	if all[0].Kind != telemetry.EventDrift || all[0].Values["distance_m"] != 812 || all[0].Attrs["state"] != "drifting" || all[0].Site != "north" {
		t.Fatalf("newest first should be the drift: %+v", all[0])
	}
	tags, err := s.Events(ctx, store.EventQuery{Gateway: "gw1", Kind: telemetry.EventTag, Key: "982000000000001",
		From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil || len(tags) != 1 || tags[0].Attrs["state"] != "gone" || tags[0].Values["count"] != 97 || tags[0].Device != "gate" {
		t.Fatalf("the updated tag event: %+v, %v", tags, err)
	}
	limited, err := s.Events(ctx, store.EventQuery{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Limit: 2})
	if err != nil || len(limited) != 2 {
		t.Fatalf("limit 2 over all gateways: %d, %v", len(limited), err)
	}
	none, err := s.Events(ctx, store.EventQuery{Gateway: "gw1", From: t0.Add(2 * time.Minute), To: t0.Add(time.Hour)})
	if err != nil || len(none) != 0 {
		t.Fatalf("after the events: %+v, %v", none, err)
	}
}

// RunCommits checks WriteBatch, Committed and CompactContext: a batch's
// items, its context and the stream's commit record are stored, the
// newest commit record wins, and an unknown context is reported as such.
func RunCommits(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	if c, err := s.Committed(ctx, "gw1", "s1"); err != nil || c.Through != 0 || len(c.Above) != 0 {
		t.Fatalf("commit of an unknown stream: %+v, %v", c, err)
	}
	def := &telemetry.CompactContext{Gateway: "gw1", Site: "north", Stream: "s1", ID: 0xdeadbeef, Version: 3,
		Series: []telemetry.SeriesDef{{Device: "soil-1", Metric: "soil_moisture", Unit: "%", Exp: 1}}, Ref: []int64{315},
		Epoch: t0.UnixNano()}
	b := &telemetry.Batch{Gateway: "gw1", Site: "north", Stream: "s1", FirstSeq: 11, Committed: 0,
		Readings: []telemetry.Reading{reading("soil-1", "soil_moisture", 31.5, 0)},
		Events: []telemetry.Event{{Device: "gw1", Kind: telemetry.EventGap, Key: "seq-1-10", Time: t0.Add(-time.Hour),
			Attrs: map[string]string{"reason": "buffer_full"}, Values: map[string]float64{"count": 10}}}}
	c1 := store.Commit{}.With(0, 11, 12)
	if err := s.WriteBatch(ctx, b, def, c1, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Committed(ctx, "gw1", "s1")
	if err != nil || got.Through != 0 || len(got.Above) != 1 || got.Above[0] != (store.Span{First: 11, Last: 12}) {
		t.Fatalf("commit after the first batch: %+v, %v", got, err)
	}
	if !got.Covers(11, 12) || got.Covers(10, 12) {
		t.Fatalf("commit %+v covers the wrong ranges", got)
	}
	cc, err := s.CompactContext(ctx, "gw1", 0xdeadbeef, 3)
	if err != nil || !cc.Equal(def) {
		t.Fatalf("context read back %+v, %v", cc, err)
	}
	for _, q := range []struct {
		gw          string
		id, version uint32
	}{{"gw1", 0xdeadbeef, 4}, {"gw1", 1, 3}, {"gw2", 0xdeadbeef, 3}} {
		if _, err := s.CompactContext(ctx, q.gw, q.id, q.version); !errors.Is(err, telemetry.ErrUnknownContext) {
			t.Errorf("context %v: %v, want ErrUnknownContext", q, err)
		}
	}
	samples, err := s.Latest(ctx, "gw1", t0.Add(-time.Hour))
	if err != nil || len(samples) != 1 || *samples[0].Value != 31.5 {
		t.Fatalf("latest after WriteBatch: %+v, %v", samples, err)
	}
	evs, err := s.Events(ctx, store.EventQuery{Gateway: "gw1", From: t0.Add(-2 * time.Hour), To: t0.Add(time.Hour)})
	if err != nil || len(evs) != 1 || evs[0].Kind != telemetry.EventGap {
		t.Fatalf("events after WriteBatch: %+v, %v", evs, err)
	}
	// The gateway says 1 … 10 were acknowledged: the commit closes up.
	b2 := *b
	b2.FirstSeq, b2.Committed, b2.Events = 13, 10, nil
	c2 := c1.With(10, 13, 13)
	time.Sleep(2 * time.Millisecond) // the newest record wins; give it a later time
	if err := s.WriteBatch(ctx, &b2, nil, c2, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Committed(ctx, "gw1", "s1"); err != nil || got.Through != 13 || len(got.Above) != 0 {
		t.Fatalf("commit after the second batch: %+v, %v", got, err)
	}
}

// RunStats checks Stats against a computation over what was written: counts
// exactly, means to 1e-9, delays to a microsecond; series merged across
// sites, kept apart by unit, other gateways and later series left out, and
// a replayed batch counted once.
func RunStats(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	type written struct {
		r     telemetry.Reading
		delay time.Duration // 0: written without one
	}
	var all []written
	rng := rand.New(rand.NewPCG(7, 13))
	batch := func(gw, site string, seq uint64, rs []telemetry.Reading, stored time.Time) {
		t.Helper()
		b := &telemetry.Batch{Gateway: gw, Site: site, Stream: "s", FirstSeq: seq, Readings: rs}
		if err := s.WriteBatch(ctx, b, nil, store.Commit{}.With(0, seq, seq+uint64(len(rs))-1), stored); err != nil {
			t.Fatal(err)
		}
		if gw == "gw1" {
			for _, r := range rs {
				all = append(all, written{r, stored.Sub(r.Time)})
			}
		}
	}
	// d1/m every 10 s over three hours, in batches of 30 stored 5 … 65 s
	// after their last reading; some uncertain, bad and valueless.
	var seq uint64 = 1
	for start := 0; start < 3*360; start += 30 {
		var rs []telemetry.Reading
		for i := start; i < start+30; i++ {
			r := reading("d1", "m", 20+10*rng.Float64(), time.Duration(i)*10*time.Second)
			switch i % 17 {
			case 3:
				r.Quality = telemetry.Uncertain
			case 5:
				r.Quality, r.Value = telemetry.Bad, -9999
			case 11:
				r.Quality, r.Value = telemetry.Bad, math.NaN()
			}
			rs = append(rs, r)
		}
		site := "north"
		if start >= 2*360 {
			site = "south" // the station moved: the same series under another site
		}
		batch("gw1", site, seq, rs, rs[len(rs)-1].Time.Add(time.Duration(5+rng.IntN(60))*time.Second))
		seq += uint64(len(rs))
	}
	// Replayed: the same batch again, the same delays; counted once.
	var again []telemetry.Reading
	for _, w := range all[:30] {
		again = append(again, w.r)
	}
	if err := s.WriteBatch(ctx, &telemetry.Batch{Gateway: "gw1", Site: "north", Stream: "s", FirstSeq: 1, Readings: again},
		nil, store.Commit{}.With(0, 1, 30), again[29].Time.Add(all[29].delay)); err != nil {
		t.Fatal(err)
	}
	// d1/m2 in another unit after a change, d2/m written without delays
	// in the second hour only, a series of another gateway, and one that
	// begins after the range.
	batch("gw1", "north", seq, []telemetry.Reading{{Device: "d1", Metric: "m2", Value: 1, Unit: "V", Time: t0.Add(time.Minute)}},
		t0.Add(3*time.Minute))
	batch("gw1", "north", seq+1, []telemetry.Reading{{Device: "d1", Metric: "m2", Value: 1000, Unit: "mV",
		Time: t0.Add(2 * time.Minute)}}, t0.Add(3*time.Minute))
	var plain []telemetry.Reading
	for i := 0; i < 60; i++ {
		plain = append(plain, reading("d2", "m", float64(i), time.Hour+time.Duration(i)*time.Minute))
	}
	if err := s.Write(ctx, "gw1", "north", plain); err != nil {
		t.Fatal(err)
	}
	for _, r := range plain {
		all = append(all, written{r, 0})
	}
	batch("gw2", "", 1, []telemetry.Reading{reading("d1", "m", 1, 0)}, t0.Add(time.Second))
	batch("gw1", "north", 1000, []telemetry.Reading{reading("d3", "m", 1, 5*time.Hour)}, t0.Add(5*time.Hour))
	all = all[:len(all)-1] // d3 begins after the range

	bounds := []time.Time{t0.Add(-time.Hour), t0, t0.Add(30 * time.Minute), t0.Add(90 * time.Minute), t0.Add(3 * time.Hour), t0.Add(4 * time.Hour)}
	want := func(dev, met, unit string) store.SeriesStats {
		ss := store.SeriesStats{Device: dev, Metric: met, Unit: unit, Periods: make([]store.PeriodStats, len(bounds)-1)}
		var sum, dsum []float64 = make([]float64, len(bounds)-1), make([]float64, len(bounds)-1)
		for _, w := range all {
			r := w.r
			if r.Device != dev || r.Metric != met || r.Unit != unit {
				continue
			}
			if ss.First.IsZero() || r.Time.Before(ss.First) {
				ss.First = r.Time
			}
			for i := range ss.Periods {
				if r.Time.Before(bounds[i]) || !r.Time.Before(bounds[i+1]) {
					continue
				}
				p := &ss.Periods[i]
				p.Received++
				if w.delay != 0 {
					p.Delays++
					d := w.delay.Seconds()
					dsum[i] += d
					if p.DelayMax == nil || d > *p.DelayMax {
						p.DelayMax = &d
					}
				}
				if r.Quality != telemetry.Good {
					continue
				}
				p.Good++
				if math.IsNaN(r.Value) {
					continue
				}
				v := r.Value
				p.Values++
				sum[i] += v
				if p.Min == nil || v < *p.Min {
					p.Min = &v
				}
				if p.Max == nil || v > *p.Max {
					p.Max = &v
				}
			}
		}
		for i := range ss.Periods {
			p := &ss.Periods[i]
			if p.Values > 0 {
				m := sum[i] / float64(p.Values)
				p.Mean = &m
			}
			if p.Delays > 0 {
				m := dsum[i] / float64(p.Delays)
				p.DelayMean = &m
			}
		}
		return ss
	}
	for _, c := range []struct {
		name        string
		device, met string
		want        []store.SeriesStats
	}{
		{"every series of the gateway", "", "", []store.SeriesStats{want("d1", "m", "%"), want("d1", "m2", "V"),
			want("d1", "m2", "mV"), want("d2", "m", "%")}},
		{"one device", "d2", "", []store.SeriesStats{want("d2", "m", "%")}},
		{"one metric", "", "m2", []store.SeriesStats{want("d1", "m2", "V"), want("d1", "m2", "mV")}},
		{"one series", "d1", "m", []store.SeriesStats{want("d1", "m", "%")}},
		{"nothing", "d9", "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Stats(ctx, store.StatsQuery{Gateway: "gw1", Device: c.device, Metric: c.met, Bounds: bounds})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("%d series, want %d: %+v", len(got), len(c.want), got)
			}
			for i, w := range c.want {
				g := got[i]
				if g.Device != w.Device || g.Metric != w.Metric || g.Unit != w.Unit || !g.First.Equal(w.First) {
					t.Fatalf("series %d = %s/%s [%s] first %v, want %s/%s [%s] first %v", i, g.Device, g.Metric, g.Unit, g.First,
						w.Device, w.Metric, w.Unit, w.First)
				}
				for j := range w.Periods {
					if d := diffPeriod(g.Periods[j], w.Periods[j]); d != "" {
						t.Errorf("%s/%s [%s] period %d: %s", w.Device, w.Metric, w.Unit, j, d)
					}
				}
			}
		})
	}
	t.Run("bounds that do not rise", func(t *testing.T) {
		if _, err := s.Stats(ctx, store.StatsQuery{Gateway: "gw1", Bounds: []time.Time{t0, t0}}); err == nil {
			t.Fatal("no error")
		}
	})
}

// diffPeriod describes how got differs from want, "" when it does not.
func diffPeriod(got, want store.PeriodStats) string {
	if got.Received != want.Received || got.Good != want.Good || got.Values != want.Values || got.Delays != want.Delays {
		return fmt.Sprintf("counts received/good/values/delays %d/%d/%d/%d, want %d/%d/%d/%d", got.Received, got.Good,
			got.Values, got.Delays, want.Received, want.Good, want.Values, want.Delays)
	}
	for _, f := range []struct {
		name      string
		got, want *float64
		tol       float64
	}{{"min", got.Min, want.Min, 0}, {"max", got.Max, want.Max, 0}, {"mean", got.Mean, want.Mean, 1e-9},
		{"delay_mean", got.DelayMean, want.DelayMean, 1e-6}, {"delay_max", got.DelayMax, want.DelayMax, 1e-6}} {
		switch {
		case (f.got == nil) != (f.want == nil):
			return fmt.Sprintf("%s %v, want %v", f.name, f.got, f.want)
		case f.got != nil && math.Abs(*f.got-*f.want) > f.tol:
			return fmt.Sprintf("%s %v, want %v", f.name, *f.got, *f.want)
		}
	}
	return ""
}

// RunGroups checks WriteGroup: batches of several gateways and streams in
// one group, a stream with two batches, a reading written twice in one
// group (the later wins), values at the float range's ends, a reading the
// store cannot keep (reported, the rest written), contexts and the final
// commit record of each stream.
func RunGroups(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	def := &telemetry.CompactContext{Gateway: "gw2", Stream: "s1", ID: 7, Version: 1,
		Series: []telemetry.SeriesDef{{Device: "do-1", Metric: "dissolved_oxygen", Unit: "mg/L", Exp: 2}}, Ref: []int64{0},
		Epoch: t0.UnixNano()}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	ancient := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	b1 := &telemetry.Batch{Gateway: "gw1", Site: "north", Stream: "s1", FirstSeq: 1, Readings: []telemetry.Reading{
		{Device: "soil-1", Metric: "soil_moisture", Unit: "%", Value: 1e300, Time: at(1)},
		{Device: "soil-1", Metric: "soil_moisture", Unit: "%", Value: 5, Time: at(2)},
		{Device: "soil-1", Metric: "soil_moisture", Unit: "%", Value: 7, Time: ancient},
	}}
	b2 := &telemetry.Batch{Gateway: "gw1", Site: "north", Stream: "s1", FirstSeq: 4, Committed: 3, Readings: []telemetry.Reading{
		{Device: "soil-1", Metric: "soil_moisture", Unit: "%", Value: 6, Time: at(2)}, // again: the later wins
		{Device: "soil-1", Metric: "soil_moisture", Unit: "%", Value: -1.5e-300, Time: at(3)},
		{Device: "soil-1", Metric: "soil_moisture", Unit: "%", Value: math.NaN(), Quality: telemetry.Bad, Time: at(4)},
	}}
	b3 := &telemetry.Batch{Gateway: "gw2", Stream: "s1", FirstSeq: 10, Readings: []telemetry.Reading{
		{Device: "do-1", Metric: "dissolved_oxygen", Unit: "mg/L", Value: 0.1, Time: at(1)},
	}, Events: []telemetry.Event{{Device: "do-1", Kind: telemetry.EventQuarantine, Time: at(1),
		Attrs: map[string]string{"state": "released"}}}}
	g := &store.Group{Batches: []*telemetry.Batch{b1, b2, b3}, Contexts: []*telemetry.CompactContext{def},
		Commits: []store.StreamCommit{{Gateway: "gw1", Stream: "s1", Commit: store.Commit{Through: 6}},
			{Gateway: "gw2", Stream: "s1", Commit: store.Commit{}.With(0, 10, 10)}},
		Stored: at(10)}
	// The batches are acknowledged when Ready is called, which confirms
	// the contexts they defined to their gateways: the contexts must be
	// durable by then.
	ready := false
	g.Ready = func(ctx context.Context) error {
		ready = true
		if cc, err := s.CompactContext(ctx, "gw2", 7, 1); err != nil || !cc.Equal(def) {
			t.Errorf("context when Ready is called: %+v, %v", cc, err)
		}
		return nil
	}
	if err := s.WriteGroup(ctx, g); err != nil || !ready {
		t.Fatalf("WriteGroup: %v; Ready called: %v", err, ready)
	}
	if u := g.Left(b1); u.Count != 1 || u.First == nil {
		t.Errorf("left out of the batch with a reading of 1600: %+v, want that one reading", u)
	}
	if u := g.Left(b2); u.Count != 0 {
		t.Errorf("left out of a batch the store can keep: %+v", u)
	}
	got, err := s.Series(ctx, store.SeriesQuery{Gateway: "gw1", Device: "soil-1", Metric: "soil_moisture",
		From: t0, To: at(10)})
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	for _, sm := range got {
		v := "none"
		if sm.Value != nil {
			v = fmt.Sprint(*sm.Value)
		}
		vals = append(vals, fmt.Sprintf("%s=%s/%s", sm.Time.Sub(t0), v, sm.Quality))
	}
	if want := []string{"1s=1e+300/good", "2s=6/good", "3s=-1.5e-300/good", "4s=none/bad"}; fmt.Sprint(vals) != fmt.Sprint(want) {
		t.Errorf("series after the group: %v, want %v", vals, want)
	}
	if got, err := s.Series(ctx, store.SeriesQuery{Gateway: "gw2", Device: "do-1", Metric: "dissolved_oxygen",
		From: t0, To: at(10)}); err != nil || len(got) != 1 || *got[0].Value != 0.1 {
		t.Errorf("gw2's series: %+v, %v", got, err)
	}
	if c, err := s.Committed(ctx, "gw1", "s1"); err != nil || c.Through != 6 || len(c.Above) != 0 {
		t.Errorf("gw1's commit: %+v, %v", c, err)
	}
	if c, err := s.Committed(ctx, "gw2", "s1"); err != nil || !c.Covers(10, 10) || c.Covers(9, 10) {
		t.Errorf("gw2's commit: %+v, %v", c, err)
	}
	if cc, err := s.CompactContext(ctx, "gw2", 7, 1); err != nil || !cc.Equal(def) {
		t.Errorf("context: %+v, %v", cc, err)
	}
	if evs, err := s.Events(ctx, store.EventQuery{Gateway: "gw2", From: t0, To: at(10)}); err != nil || len(evs) != 1 {
		t.Errorf("events: %+v, %v", evs, err)
	}
}
