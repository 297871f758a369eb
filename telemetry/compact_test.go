package telemetry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// liveBatches cuts benchBatch(50·n) into n batches of one minute each.
func liveBatches(n int) []*Batch {
	all := benchBatch(50 * n)
	out := make([]*Batch, n)
	for k := range out {
		b := *all
		b.Readings = all.Readings[50*k : 50*k+50]
		b.FirstSeq = all.FirstSeq + uint64(50*k)
		b.Committed = b.FirstSeq - 1
		out[k] = &b
	}
	return out
}

// cloud is the far side of the tests: it decodes, stores each definition
// with its batch, and acknowledges.
type cloud struct {
	ctxs    MemoryContexts
	gateway string
}

func (c *cloud) receive(t testing.TB, data []byte) (*Batch, *CompactContext) {
	t.Helper()
	b, def, err := DecodeCompact(context.Background(), data, c.gateway, &c.ctxs)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if def != nil {
		c.ctxs.Put(def)
	}
	return b, def
}

// sameBatch reports the first difference between two batches, comparing
// floats bit for bit and times to the nanosecond.
func sameBatch(want, got *Batch) error {
	if want.Gateway != got.Gateway || want.Site != got.Site || want.Stream != got.Stream || want.FirstSeq != got.FirstSeq ||
		want.Committed != got.Committed || want.Backlog != got.Backlog {
		return fmt.Errorf("header %+v, want %+v", *got, *want)
	}
	if len(want.Readings) != len(got.Readings) || len(want.Events) != len(got.Events) {
		return fmt.Errorf("%d readings and %d events, want %d and %d", len(got.Readings), len(got.Events), len(want.Readings), len(want.Events))
	}
	for i, w := range want.Readings {
		g := got.Readings[i]
		if math.Float64bits(w.Value) != math.Float64bits(g.Value) || w.Time.UnixNano() != g.Time.UnixNano() {
			return fmt.Errorf("reading %d: %v at %d, want %v (%#x) at %d", i, g.Value, g.Time.UnixNano(), w.Value,
				math.Float64bits(w.Value), w.Time.UnixNano())
		}
		w.Value, g.Value, w.Time, g.Time = 0, 0, time.Time{}, time.Time{}
		if w != g {
			return fmt.Errorf("reading %d: %+v, want %+v", i, g, w)
		}
	}
	for i, w := range want.Events {
		g := got.Events[i]
		if !w.Time.Equal(g.Time) || w.Device != g.Device || w.Kind != g.Kind || w.Key != g.Key || w.Clock != g.Clock ||
			!reflect.DeepEqual(w.Attrs, g.Attrs) || len(w.Values) != len(g.Values) {
			return fmt.Errorf("event %d: %+v, want %+v", i, g, w)
		}
		for k, v := range w.Values {
			if math.Float64bits(v) != math.Float64bits(g.Values[k]) {
				return fmt.Errorf("event %d value %s: %v, want %v", i, k, g.Values[k], v)
			}
		}
	}
	return nil
}

// confirmedOne returns n live batches, an encoder whose first batch a cloud
// has stored and acknowledged, that cloud, and what the batch defined.
func confirmedOne(t *testing.T, n int) ([]*Batch, *CompactEncoder, *cloud, CompactSent) {
	t.Helper()
	batches := liveBatches(n)
	enc := NewCompactEncoder(batches[0].Gateway, batches[0].Site, batches[0].Stream)
	cl := &cloud{gateway: batches[0].Gateway}
	data, sent, err := enc.Encode(batches[0])
	if err != nil {
		t.Fatal(err)
	}
	cl.receive(t, data)
	enc.Confirm(sent)
	return batches, enc, cl, sent
}

// TestCompactLive sends an hour of live minutes, each after the previous
// one was acknowledged: every batch decodes to itself, only the first
// defines the dictionary, and a batch that defines nothing refers to the
// newest confirmed version.
func TestCompactLive(t *testing.T) {
	batches := liveBatches(60)
	enc := NewCompactEncoder(batches[0].Gateway, batches[0].Site, batches[0].Stream)
	cl := &cloud{gateway: batches[0].Gateway}
	confirmed := uint32(0)
	for k, b := range batches {
		data, sent, err := enc.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		got, def := cl.receive(t, data)
		if err := sameBatch(b, got); err != nil {
			t.Fatalf("batch %d: %v", k, err)
		}
		switch {
		case k == 0 && (def == nil || len(def.Series) != 50 || data[8]&3 != kindScratch):
			t.Fatalf("the first batch must define all 50 series from scratch: %+v", def)
		case k > 0 && def != nil && (len(def.Series) != 50 || data[8]&3 != kindDefine):
			t.Fatalf("batch %d redefines the dictionary: kind %d", k, data[8]&3)
		case def == nil && sent.Version != confirmed:
			t.Fatalf("batch %d refers to version %d; %d is confirmed", k, sent.Version, confirmed)
		}
		if (def != nil) != sent.Defined {
			t.Fatalf("batch %d: defined %v, sent says %v", k, def != nil, sent.Defined)
		}
		enc.Confirm(sent)
		if sent.Defined {
			confirmed = sent.Version
		}
	}
}

// TestCompactValues: values decode to the very float64 that ParseFloat gives
// for their decimal, and what no exponent represents travels raw.
func TestCompactValues(t *testing.T) {
	tests := []struct {
		in      string
		exp     int8 // the exponent chosen, -1 for an exception
		quality Quality
	}{
		{"65.8", 1, Good}, {"-10.1", 1, Good}, {"120.5", 1, Good}, {"0.1", 1, Good}, {"1013.25", 2, Good},
		{"0.000123", 6, Good}, {"42", 0, Good}, {"-7", 0, Good}, {"9007199254740992", 0, Good},
		{"123456.789012", 6, Good}, {"0.30000000000000004", -1, Good}, {"1e300", -1, Good},
		{"5e-324", -1, Good}, {"-0", -1, Good}, {"NaN", -1, Bad}, {"+Inf", -1, Bad}, {"-Inf", -1, Uncertain},
		{"18014398509481984", -1, Good},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			v, err := strconv.ParseFloat(tc.in, 64)
			if err != nil {
				t.Fatal(err)
			}
			b := exampleBatch()
			b.Readings = b.Readings[:1]
			b.Readings[0].Value, b.Readings[0].Quality = v, tc.quality
			enc := NewCompactEncoder(b.Gateway, b.Site, b.Stream)
			data, _, err := enc.Encode(b)
			if err != nil {
				t.Fatal(err)
			}
			got, def := (&cloud{gateway: b.Gateway}).receive(t, data)
			if math.Float64bits(got.Readings[0].Value) != math.Float64bits(v) {
				t.Fatalf("decoded %v (%#x), want %v (%#x)", got.Readings[0].Value, math.Float64bits(got.Readings[0].Value), v, math.Float64bits(v))
			}
			_, ok := scaled(v, def.Series[0].Exp)
			if exc := !ok; exc != (tc.exp < 0) || (!exc && def.Series[0].Exp != tc.exp) {
				t.Fatalf("exponent %d, exception %v; want %d", def.Series[0].Exp, exc, tc.exp)
			}
		})
	}
}

// TestCompactExpRaise: a value with more decimals than its series' exponent
// defines a version with a larger one, and the older values still decode.
func TestCompactExpRaise(t *testing.T) {
	b := exampleBatch()
	enc := NewCompactEncoder(b.Gateway, b.Site, b.Stream)
	cl := &cloud{gateway: b.Gateway}
	for k, v := range []float64{65.8, 65.85, 65.9, 65.125} {
		b.Readings[0].Value = v
		b.FirstSeq += 3
		b.Committed = b.FirstSeq - 1
		data, sent, err := enc.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := cl.receive(t, data)
		if err := sameBatch(b, got); err != nil {
			t.Fatalf("batch %d: %v", k, err)
		}
		enc.Confirm(sent)
		if want := []int8{1, 2, 2, 3}[k]; enc.Confirmed().Series[0].Exp != want {
			t.Fatalf("batch %d: exponent %d, want %d", k, enc.Confirmed().Series[0].Exp, want)
		}
	}
}

// TestCompactUnconfirmed: until the cloud acknowledges a definition, every
// batch defines it again (the same version, the same content) or refers to
// the older confirmed version; and it can be decoded by a cloud that has
// only the confirmed versions.
func TestCompactUnconfirmed(t *testing.T) {
	batches := liveBatches(4)
	enc := NewCompactEncoder(batches[0].Gateway, batches[0].Site, batches[0].Stream)
	var defs []*CompactContext
	for k, b := range batches {
		data, sent, err := enc.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !sent.Defined || sent.Version != 1 {
			t.Fatalf("batch %d: %+v; want version 1 defined again", k, sent)
		}
		_, def := (&cloud{gateway: b.Gateway}).receive(t, data) // a cloud that knows nothing
		defs = append(defs, def)
	}
	if !defs[0].Equal(defs[3]) {
		t.Fatalf("the same version was defined differently:\n%+v\n%+v", defs[0], defs[3])
	}
	// A new series while version 1 is unconfirmed: version 2, still from
	// scratch; confirming 2 first and 1 late leaves 2 in use.
	b := liveBatches(5)[4]
	b.Readings = append(slices.Clone(b.Readings), Reading{Device: "new", Metric: "m", Value: 1, Time: b.Readings[0].Time})
	_, sent2, err := enc.Encode(b)
	if err != nil || sent2.Version != 2 || !sent2.Defined {
		t.Fatalf("%+v, %v", sent2, err)
	}
	enc.Confirm(sent2)
	enc.Confirm(CompactSent{ID: sent2.ID, Version: 1, Defined: true})
	if enc.Confirmed().Version != 2 {
		t.Fatalf("confirmed version %d, want 2", enc.Confirmed().Version)
	}
	_, sent3, err := enc.Encode(b)
	if err != nil || sent3.Defined || sent3.Version != 2 {
		t.Fatalf("%+v, %v; want a reference to version 2", sent3, err)
	}
}

// TestCompactResync: a cloud that lost its contexts answers
// ErrUnknownContext; after Reset the gateway's batches define everything
// under a new context ID.
func TestCompactResync(t *testing.T) {
	batches, enc, cl, sent := confirmedOne(t, 2)
	data, _, _ := enc.Encode(batches[1])
	amnesiac := &cloud{gateway: cl.gateway}
	if _, _, err := DecodeCompact(context.Background(), data, cl.gateway, &amnesiac.ctxs); !errors.Is(err, ErrUnknownContext) {
		t.Fatalf("error %v, want ErrUnknownContext", err)
	}
	enc.Reset()
	data, sent2, err := enc.Encode(batches[1])
	if err != nil || !sent2.Defined || sent2.ID == sent.ID || sent2.Version != 1 {
		t.Fatalf("%+v, %v; want version 1 of a new context defined", sent2, err)
	}
	got, _ := amnesiac.receive(t, data)
	if err := sameBatch(batches[1], got); err != nil {
		t.Fatal(err)
	}
	enc.Confirm(sent) // the old context's late ack changes nothing
	if enc.Confirmed() != nil {
		t.Fatal("a confirmation of the old context was taken")
	}
}

// TestCompactWrongGateway: a batch on another gateway's topic never
// resolves to that gateway's data.
func TestCompactWrongGateway(t *testing.T) {
	batches := liveBatches(2)
	enc := NewCompactEncoder(batches[0].Gateway, batches[0].Site, batches[0].Stream)
	cl := &cloud{gateway: batches[0].Gateway}
	data, sent, _ := enc.Encode(batches[0])
	if _, _, err := DecodeCompact(context.Background(), data, "farm-south", &cl.ctxs); !errors.Is(err, ErrGatewayMismatch) {
		t.Fatalf("defining batch on the wrong topic: %v, want ErrGatewayMismatch", err)
	}
	_, def := cl.receive(t, data)
	enc.Confirm(sent)
	south := *def
	south.Gateway = "farm-south"
	cl.ctxs.Put(&south) // even if farm-south had a context with the same id
	data, _, _ = enc.Encode(batches[1])
	ctxs := &mixedUp{&cl.ctxs}
	if _, _, err := DecodeCompact(context.Background(), data, "farm-south", ctxs); !errors.Is(err, ErrUnknownContext) {
		t.Fatalf("referring batch on the wrong topic: %v, want ErrUnknownContext", err)
	}
}

// mixedUp is a broken store that returns contexts of any gateway.
type mixedUp struct{ m *MemoryContexts }

func (m *mixedUp) CompactContext(ctx context.Context, _ string, id, version uint32) (*CompactContext, error) {
	return m.m.CompactContext(ctx, "farm-north", id, version)
}

// TestCompactConflict: a version defined again with other content is
// refused, so a store never holds two meanings for one version.
func TestCompactConflict(t *testing.T) {
	b := liveBatches(1)[0]
	enc := NewCompactEncoder(b.Gateway, b.Site, b.Stream)
	cl := &cloud{gateway: b.Gateway}
	data, _, _ := enc.Encode(b)
	_, def := cl.receive(t, data)
	other := def.Clone()
	other.Ref[0]++
	cl.ctxs.Put(other)
	if _, _, err := DecodeCompact(context.Background(), data, b.Gateway, &cl.ctxs); !errors.Is(err, ErrUnknownContext) ||
		!strings.Contains(err.Error(), "other content") {
		t.Fatalf("error %v, want a conflict", err)
	}
}

// TestCompactStoreFailure: a failing store is neither malformed nor unknown.
func TestCompactStoreFailure(t *testing.T) {
	batches, enc, cl, _ := confirmedOne(t, 2)
	data, _, _ := enc.Encode(batches[1])
	_, _, err := DecodeCompact(context.Background(), data, cl.gateway, failing{})
	if err == nil || errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnknownContext) || !errors.Is(err, errDown) {
		t.Fatalf("error %v", err)
	}
}

var errDown = errors.New("store down")

type failing struct{}

func (failing) CompactContext(context.Context, string, uint32, uint32) (*CompactContext, error) {
	return nil, errDown
}

func TestPeekCodec(t *testing.T) {
	b := liveBatches(1)[0]
	data, _, err := NewCompactEncoder(b.Gateway, b.Site, b.Stream).Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := PeekCodec(data); c != CodecCompact || err != nil {
		t.Fatalf("%v, %v", c, err)
	}
	rows, _ := Encode(b, CodecRowsDeflate)
	if c, err := PeekCodec(rows); c != CodecRowsDeflate || err != nil {
		t.Fatalf("%v, %v", c, err)
	}
	if _, err := Decode(data); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "DecodeCompact") {
		t.Fatalf("Decode of a compact batch: %v", err)
	}
	if _, _, err := DecodeCompact(context.Background(), rows, b.Gateway, &MemoryContexts{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("DecodeCompact of a rows batch: %v", err)
	}
	if _, err := Encode(b, CodecCompact); err == nil {
		t.Fatal("Encode accepted codec 5")
	}
	for _, bad := range [][]byte{nil, []byte("FW"), []byte("XW\x01\x05"), []byte("FW\x07\x05")} {
		if _, err := PeekCodec(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("PeekCodec(%q): %v", bad, err)
		}
	}
}

func TestSecond(t *testing.T) {
	for _, tc := range []struct{ t, want int64 }{{1795240800250000000, 1795240800000000000}, {0, 0}, {-1, -1e9},
		{-1e9, -1e9}, {math.MinInt64, math.MinInt64}, {math.MinInt64 + 5, math.MinInt64 + 5}, {math.MaxInt64, math.MaxInt64 - 854775807}} {
		if got := second(tc.t); got != tc.want {
			t.Errorf("second(%d) = %d, want %d", tc.t, got, tc.want)
		}
	}
}

// TestCompactFullDictionary: when the series would overflow MaxSeries, the
// encoder defines a fresh dictionary of the batch's series from nothing.
func TestCompactFullDictionary(t *testing.T) {
	b := liveBatches(1)[0]
	enc := NewCompactEncoder(b.Gateway, b.Site, b.Stream)
	full := &CompactContext{Gateway: b.Gateway, Site: b.Site, Stream: b.Stream, ID: enc.id, Version: 1}
	for i := range MaxSeries - 10 {
		full.Series = append(full.Series, SeriesDef{Device: fmt.Sprintf("old-%d", i), Metric: "m"})
		full.Ref = append(full.Ref, 0)
	}
	enc.confirmed, enc.next = full, 2
	data, sent, err := enc.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	var ctxs MemoryContexts
	ctxs.Put(full)
	got, def, err := DecodeCompact(context.Background(), data, b.Gateway, &ctxs)
	if err != nil {
		t.Fatal(err)
	}
	if !sent.Defined || data[8]&3 != kindScratch || len(def.Series) != 50 {
		t.Fatalf("kind %d, %d series; want 50 from nothing", data[8]&3, len(def.Series))
	}
	if err := sameBatch(b, got); err != nil {
		t.Fatal(err)
	}
}
