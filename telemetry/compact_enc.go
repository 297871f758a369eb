package telemetry

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"time"
)

// CompactEncoder is the gateway side of codec 5. It encodes batches against
// the newest context version the cloud has confirmed and defines a new
// version inline when a batch needs one. It is not safe for concurrent use.
type CompactEncoder struct {
	gateway, site, stream string
	id                    uint32
	next                  uint32 // the next version to define
	confirmed             *CompactContext
	pending               []*CompactContext // defined, not yet confirmed, oldest first

	// The rebase policy: value bits per value of the first batch against
	// driftVersion, and the bits lost to drift since.
	driftVersion uint32
	baseline     float64
	excess       float64
}

// CompactSent says what an encoded batch used; hand it to Confirm when the
// cloud acknowledges the batch.
type CompactSent struct {
	ID      uint32 // the context
	Version uint32 // the version the batch referenced or defined
	Defined bool   // the batch defined Version
}

// maxPending bounds the versions remembered while unconfirmed; a
// confirmation of a forgotten version is ignored.
const maxPending = 64

// NewCompactEncoder returns an encoder for one gateway's buffer stream, with
// a new random context ID and nothing confirmed.
func NewCompactEncoder(gateway, site, stream string) *CompactEncoder {
	e := &CompactEncoder{gateway: gateway, site: site, stream: stream}
	e.Reset()
	return e
}

// Reset forgets every confirmation, because the cloud said it does not know
// the context: the next batch defines everything, under a new context ID.
// Batches encoded before and not yet acknowledged must be encoded again.
func (e *CompactEncoder) Reset() {
	old := e.id
	for e.id == 0 || e.id == old {
		e.id = rand.Uint32()
	}
	e.next, e.confirmed, e.pending = 1, nil, nil
	e.driftVersion, e.baseline, e.excess = 0, 0, 0
}

// Confirm records that the cloud acknowledged a batch: if it defined a
// version newer than the confirmed one, later batches refer to it.
// Confirmations may come in any order and more than once.
func (e *CompactEncoder) Confirm(sent CompactSent) {
	if !sent.Defined || sent.ID != e.id {
		return
	}
	for k, c := range e.pending {
		if c.Version != sent.Version {
			continue
		}
		if e.confirmed == nil || c.Version > e.confirmed.Version {
			e.confirmed = c
		}
		e.pending = append(e.pending[:0], e.pending[k+1:]...)
		return
	}
}

// ID is the encoder's current context ID (a new one after Reset).
func (e *CompactEncoder) ID() uint32 { return e.id }

// Confirmed returns the newest confirmed version, nil if none.
func (e *CompactEncoder) Confirmed() *CompactContext { return e.confirmed }

// batchSeries is one series of a batch with its finite values.
type batchSeries struct {
	key    SeriesDef // Exp unset
	values []float64
}

// Encode validates b and encodes it against the newest confirmed context,
// defining a new version inline when b needs one: a series the context lacks,
// a larger Exp, or a rebase of the references once the values have drifted.
func (e *CompactEncoder) Encode(b *Batch) ([]byte, CompactSent, error) {
	if err := b.Validate(); err != nil {
		return nil, CompactSent{}, err
	}
	if b.Gateway != e.gateway || b.Site != e.site || b.Stream != e.stream {
		return nil, CompactSent{}, fmt.Errorf("batch of %s/%s/%s given to the compact encoder of %s/%s/%s",
			b.Gateway, b.Site, b.Stream, e.gateway, e.site, e.stream)
	}
	keys := make(map[SeriesDef]int)
	var series []batchSeries
	idxInBatch := make([]int, len(b.Readings))
	for i, r := range b.Readings {
		if t := r.Time.UnixNano(); !time.Unix(0, t).Equal(r.Time) {
			return nil, CompactSent{}, fmt.Errorf("reading %d: time %v is outside int64 nanoseconds", i, r.Time)
		}
		k := SeriesDef{Device: r.Device, Metric: r.Metric, Unit: r.Unit}
		j, ok := keys[k]
		if !ok {
			j = len(series)
			keys[k] = j
			series = append(series, batchSeries{key: k})
		}
		if finite(r.Value) {
			series[j].values = append(series[j].values, r.Value)
		}
		idxInBatch[i] = j
	}
	if len(series) > MaxSeries {
		return nil, CompactSent{}, fmt.Errorf("batch has %d series, more than a context holds (%d)", len(series), MaxSeries)
	}
	use, define := e.choose(b, series)
	index := seriesIndex(use)
	idx := make([]int, len(b.Readings))
	for i, j := range idxInBatch {
		idx[i] = index[series[j].key]
	}
	data, valueBits, values := e.write(b, use, define, idx)
	if len(data) > MaxBatchBytes {
		return nil, CompactSent{}, fmt.Errorf("encoded batch is %d bytes, more than %d; send fewer readings", len(data), MaxBatchBytes)
	}
	if define {
		e.remember(use)
	} else {
		e.noteDrift(use.Version, valueBits, values)
	}
	return data, CompactSent{ID: e.id, Version: use.Version, Defined: define}, nil
}

// choose returns the context b is encoded against and whether b defines it.
func (e *CompactEncoder) choose(b *Batch, series []batchSeries) (*CompactContext, bool) {
	base := e.confirmed
	needs := base == nil || !satisfies(base, series)
	var latest *CompactContext
	if len(e.pending) > 0 {
		latest = e.pending[len(e.pending)-1]
	}
	switch {
	case !needs && (latest != nil || !e.rebaseWanted()):
		return base, false
	case needs && latest != nil && satisfies(latest, series):
		return latest, true // the same version again: idempotent
	}
	from := latest
	if from == nil {
		from = base
	}
	c := &CompactContext{Gateway: e.gateway, Site: e.site, Stream: e.stream, ID: e.id}
	if from != nil && len(from.Series)+len(series) <= MaxSeries {
		c = from.Clone()
	}
	c.Version = e.next
	e.next++
	e.excess = 0 // the new version rebases every series of the batch
	if len(b.Readings) > 0 {
		c.Epoch = second(b.Readings[0].Time.UnixNano())
	}
	index := seriesIndex(c)
	siblings := make(map[[2]string]int8) // the Exp each metric needs in this batch
	for _, s := range series {
		k := [2]string{s.key.Metric, s.key.Unit}
		siblings[k] = max(siblings[k], needExp(s.values, 0))
	}
	for _, s := range series {
		i, ok := index[s.key]
		if !ok {
			i = len(c.Series)
			def := s.key
			def.Exp = bestExp(s.values, max(metricExp(c, def), siblings[[2]string{def.Metric, def.Unit}]))
			c.Series, c.Ref = append(c.Series, def), append(c.Ref, 0)
		}
		if need := needExp(s.values, c.Series[i].Exp); need > c.Series[i].Exp {
			c.Series[i].Exp, c.Ref[i] = need, 0
		}
		// Rebase: the series' first value becomes its reference.
		for _, v := range s.values {
			if m, ok := scaled(v, c.Series[i].Exp); ok {
				c.Ref[i] = m
				break
			}
		}
	}
	return c, true
}

// second returns the start of the second t (Unix ns) falls in, or t itself
// near the start of int64 time.
func second(t int64) int64 {
	if m := ((t % 1e9) + 1e9) % 1e9; t >= math.MinInt64+m {
		return t - m
	}
	return t
}

func (e *CompactEncoder) remember(c *CompactContext) {
	for _, p := range e.pending {
		if p == c {
			return
		}
	}
	if len(e.pending) == maxPending {
		e.pending = append(e.pending[:0], e.pending[1:]...)
	}
	e.pending = append(e.pending, c)
}

// noteDrift keeps the rebase policy's account: the first batch against a
// version sets the baseline bits per value; later ones add what they spend
// beyond it.
func (e *CompactEncoder) noteDrift(version uint32, valueBits, values int) {
	if values == 0 {
		return
	}
	per := float64(valueBits) / float64(values)
	if version != e.driftVersion {
		e.driftVersion, e.baseline, e.excess = version, per, 0
		return
	}
	if per > e.baseline {
		e.excess += (per - e.baseline) * float64(values)
	}
}

// rebaseWanted says when to define a version with fresh references: once
// the bytes lost to drift since the last one exceed what defining one costs
// (the names it carries and a few bytes of headers), as a ski-rental rule.
func (e *CompactEncoder) rebaseWanted() bool {
	cost := len(e.gateway) + len(e.site) + len(e.stream) + 3 + 8
	return e.excess/8 >= float64(cost)
}

func seriesIndex(c *CompactContext) map[SeriesDef]int {
	m := make(map[SeriesDef]int, len(c.Series))
	for i, s := range c.Series {
		m[SeriesDef{Device: s.Device, Metric: s.Metric, Unit: s.Unit}] = i
	}
	return m
}

// satisfies reports whether c has every series of the batch at an Exp that
// represents its values (or values no Exp represents).
func satisfies(c *CompactContext, series []batchSeries) bool {
	index := seriesIndex(c)
	for _, s := range series {
		i, ok := index[s.key]
		if !ok || needExp(s.values, c.Series[i].Exp) > c.Series[i].Exp {
			return false
		}
	}
	return true
}

// needExp is the smallest Exp from `from` up that represents every value,
// or −1 if none does.
func needExp(values []float64, from int8) int8 {
	for e := from; e <= MaxExp; e++ {
		all := true
		for _, v := range values {
			if _, ok := scaled(v, e); !ok {
				all = false
				break
			}
		}
		if all {
			return e
		}
	}
	return -1
}

// metricExp is the largest Exp of c's series of the same metric and unit:
// a probe that reads 21.0 now will read 21.3 later, as its siblings do.
func metricExp(c *CompactContext, s SeriesDef) int8 {
	e := int8(0)
	for _, t := range c.Series {
		if t.Metric == s.Metric && t.Unit == s.Unit {
			e = max(e, t.Exp)
		}
	}
	return e
}

// bestExp is the Exp for a new series: the smallest from `from` up that
// represents all its values, else the one that represents the most.
func bestExp(values []float64, from int8) int8 {
	if e := needExp(values, from); e >= 0 {
		return e
	}
	best, most := int8(0), -1
	for e := int8(0); e <= MaxExp; e++ {
		n := 0
		for _, v := range values {
			if _, ok := scaled(v, e); ok {
				n++
			}
		}
		if n > most {
			best, most = e, n
		}
	}
	return best
}

func finite(v float64) bool { return v-v == 0 }

// Context kinds, in the low two bits of the version field.
const (
	kindRefer   = 0 // the batch refers to a confirmed version
	kindDefine  = 1 // it defines a version relative to a confirmed one
	kindScratch = 2 // it defines a version from nothing
)

func (e *CompactEncoder) write(b *Batch, c *CompactContext, define bool, idx []int) ([]byte, int, int) {
	out := appendEnvelope(make([]byte, 0, 64+4*b.Len()), b, CodecCompact)
	out = appendUint32(out, c.ID)
	kind, base := kindRefer, (*CompactContext)(nil)
	if define {
		kind, base = kindScratch, e.confirmed
		if base != nil && extends(c, base) {
			kind = kindDefine
		} else {
			base = nil
		}
	}
	out = binary.AppendUvarint(out, uint64(c.Version)<<2|uint64(kind))
	out = binary.AppendUvarint(out, b.FirstSeq)
	out = binary.AppendUvarint(out, b.FirstSeq-1-b.Committed)
	out = binary.AppendUvarint(out, uint64(b.Len()))
	var w bitWriter
	if define {
		out = appendDefinition(out, &w, c, base)
	}
	if len(b.Events) > 0 {
		w.write(1, 1)
		w.uvarint(uint64(len(b.Events)))
	} else {
		w.write(0, 1)
	}
	var valueBits, values int
	if len(b.Readings) > 0 {
		valueBits, values = appendCompactBody(&w, c, b.Readings, idx)
	}
	out = append(out, w.bytes()...)
	if len(b.Events) > 0 {
		out = AppendEvents(out, b.Events)
	}
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crcTable))
	return out, valueBits, values
}

// extends reports whether c's dictionary starts with base's series.
func extends(c, base *CompactContext) bool {
	if len(base.Series) > len(c.Series) {
		return false
	}
	for i, s := range base.Series {
		if t := c.Series[i]; s.Device != t.Device || s.Metric != t.Metric || s.Unit != t.Unit {
			return false
		}
	}
	return true
}
