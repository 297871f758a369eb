package telemetry

import (
	"encoding/binary"
)

// A definition (docs/wire.md, "Codec 5") says what a new context version
// holds, relative to a confirmed base version or from nothing:
//
//	string   gateway, site, stream
//	uvarint  base version (kind 1 only)
//	uvarint  S, the series of the new version (≥ the base's, ≤ MaxSeries)
//	         for each series beyond the base's: device, metric and unit as
//	         names (below)
//
// and, first in the bit stream:
//
//	varint   epoch − the base's epoch (0 without a base)
//	         an integer column of S exponents − the implied exponent
//	         an integer column of S references − the implied reference
//
// A series' implied exponent and reference are the base's for a series of
// the base whose exponent is unchanged, else 0 (the exponent only is
// implied for a series of the base whose exponent changes).
//
// A name is uvarint k: 0 and a string for a name not yet in its column's
// table (which it joins), or k ≥ 1 for the table's k-th name. Each of the
// device, metric and unit columns has its table, holding the base's names in
// order of first use.

// nameTable numbers the distinct names of one column.
type nameTable struct {
	idx  map[string]int
	list []string
}

func (t *nameTable) add(s string) {
	if t.idx == nil {
		t.idx = make(map[string]int)
	}
	if _, ok := t.idx[s]; !ok {
		t.idx[s] = len(t.list)
		t.list = append(t.list, s)
	}
}

func (t *nameTable) put(out []byte, s string) []byte {
	if k, ok := t.idx[s]; ok {
		return binary.AppendUvarint(out, uint64(k+1))
	}
	t.add(s)
	return appendString(append(out, 0), s)
}

func (t *nameTable) get(r *reader, what string) string {
	k := r.uvarint(what)
	switch {
	case r.err != nil:
		return ""
	case k == 0:
		s := r.string(what)
		t.add(s)
		return s
	case k-1 < uint64(len(t.list)):
		return t.list[k-1]
	}
	r.err = malformed("%s: name %d of %d", what, k, len(t.list))
	return ""
}

// nameTables returns the device, metric and unit tables seeded with base.
func nameTables(base *CompactContext) *[3]nameTable {
	var t [3]nameTable
	if base != nil {
		for _, s := range base.Series {
			t[0].add(s.Device)
			t[1].add(s.Metric)
			t[2].add(s.Unit)
		}
	}
	return &t
}

// implied returns the exponent and reference a definition counts series i
// from, given the exponent it ends with.
func implied(base *CompactContext, i int, exp int8) (int8, int64) {
	if base == nil || i >= len(base.Series) {
		return 0, 0
	}
	if base.Series[i].Exp != exp {
		return base.Series[i].Exp, 0
	}
	return exp, base.Ref[i]
}

// appendDefinition writes c's definition relative to base (nil: from
// nothing): the names to out, the rest to w.
func appendDefinition(out []byte, w *bitWriter, c, base *CompactContext) []byte {
	out = appendString(out, c.Gateway)
	out = appendString(out, c.Site)
	out = appendString(out, c.Stream)
	nbase, epoch := 0, int64(0)
	if base != nil {
		out = binary.AppendUvarint(out, uint64(base.Version))
		nbase, epoch = len(base.Series), base.Epoch
	}
	out = binary.AppendUvarint(out, uint64(len(c.Series)))
	t := nameTables(base)
	for _, s := range c.Series[nbase:] {
		out = t[0].put(out, s.Device)
		out = t[1].put(out, s.Metric)
		out = t[2].put(out, s.Unit)
	}
	w.varint(c.Epoch - epoch)
	exps := make([]int64, len(c.Series))
	refs := make([]int64, len(c.Series))
	for i, s := range c.Series {
		e, ref := implied(base, i, s.Exp)
		exps[i], refs[i] = int64(s.Exp-e), c.Ref[i]-ref
	}
	w.intCol(exps)
	w.intCol(refs)
	return out
}

// readDefinition reads the rest of a definition into c, whose names, ID and
// version are set, relative to base (nil: from nothing), and returns the
// bit stream positioned after it.
func readDefinition(r *reader, c, base *CompactContext) (*bitReader, error) {
	nbase, epoch := 0, int64(0)
	if base != nil {
		nbase, epoch = len(base.Series), base.Epoch
	}
	n := r.uvarint("series count")
	if r.err == nil && (n < uint64(nbase) || n > MaxSeries) {
		return nil, malformed("%d series where the base has %d (at most %d)", n, nbase, MaxSeries)
	}
	if r.err != nil {
		return nil, r.err
	}
	c.Series = make([]SeriesDef, n)
	c.Ref = make([]int64, n)
	if base != nil {
		copy(c.Series, base.Series)
	}
	t := nameTables(base)
	for i := nbase; i < int(n) && r.err == nil; i++ {
		c.Series[i] = SeriesDef{Device: t[0].get(r, "device"), Metric: t[1].get(r, "metric"), Unit: t[2].get(r, "unit")}
	}
	if r.err != nil {
		return nil, r.err
	}
	br := &bitReader{b: r.b}
	c.Epoch = epoch + br.varint("epoch")
	exps := br.intCol(int(n), "exponents")
	refs := br.intCol(int(n), "references")
	if br.err != nil {
		return nil, br.err
	}
	for i := range c.Series {
		var e0 int8
		if i < nbase {
			e0 = base.Series[i].Exp
		}
		e := int64(e0) + exps[i]
		if exps[i] < -MaxExp || exps[i] > MaxExp || e < 0 || e > MaxExp {
			return nil, malformed("series %d: exponent %d%+d is outside 0…%d", i, e0, exps[i], MaxExp)
		}
		c.Series[i].Exp = int8(e)
		_, ref := implied(base, i, int8(e))
		if refs[i] < -2*maxScaled || refs[i] > 2*maxScaled || ref+refs[i] < -maxScaled || ref+refs[i] > maxScaled {
			return nil, malformed("series %d: reference %d%+d is outside ±2^53", i, ref, refs[i])
		}
		c.Ref[i] = ref + refs[i]
	}
	return br, nil
}
