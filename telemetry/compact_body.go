package telemetry

import (
	"encoding/binary"
	"math"
	"time"
)

// The readings of a compact batch, in its bit stream (docs/wire.md):
//
//	series   uvarint runs; per run: uvarint length−1 (not for the last
//	         run, which takes the rest), uvarint its first series; within a
//	         run the series index goes up by one, from the last back to 0
//	flags    uvarint runs; per run: uvarint length−1 (not for the last),
//	         5 bits quality | clock<<2
//	times    the time column (compact_time.go)
//	uvarint  X exceptions; X × (uvarint gap before it, 64 bits float64)
//	values   an integer column of value − reference for each other reading
//	         whose series has no earlier non-exception value in the batch,
//	         then one of value − that earlier value for the rest

// appendCompactBody writes rs, whose series indexes in c are idx, and
// returns how many bits the first value column took and how many values it
// holds.
func appendCompactBody(w *bitWriter, c *CompactContext, rs []Reading, idx []int) (valueBits, values int) {
	nser := len(c.Series)
	var starts []int
	for i := range rs {
		if i == 0 || idx[i] != (idx[i-1]+1)%nser {
			starts = append(starts, i)
		}
	}
	writeRuns(w, starts, len(rs), func(i int) { w.uvarint(uint64(idx[i])) })
	var fstarts []int
	for i := range rs {
		if i == 0 || flagsOf(rs[i]) != flagsOf(rs[i-1]) {
			fstarts = append(fstarts, i)
		}
	}
	writeRuns(w, fstarts, len(rs), func(i int) { w.write(uint64(flagsOf(rs[i])), 5) })

	ts := make([]int64, len(rs))
	period := 0
	for i, r := range rs {
		ts[i] = r.Time.UnixNano()
		// The period of the poll cycle, in runs of equal times: the run
		// where the first reading's series comes round again.
		if i > 0 && ts[i] != ts[i-1] && period == 0 && idx[i] == idx[0] {
			period = runsBefore(ts[:i+1])
		}
	}
	w.timeCol(ts, c.Epoch, period)

	ms := make([]int64, len(rs))
	exc := make([]int, 0)
	for i, r := range rs {
		m, ok := scaled(r.Value, c.Series[idx[i]].Exp)
		if !ok {
			exc = append(exc, i)
		}
		ms[i] = m
	}
	w.uvarint(uint64(len(exc)))
	prev := -1
	for _, i := range exc {
		w.uvarint(uint64(i - prev - 1))
		w.write(math.Float64bits(rs[i].Value), 64)
		prev = i
	}
	first, rest := splitValues(c, idx, exc, func(i int) int64 { return ms[i] })
	before := w.bitLen()
	w.intCol(first)
	valueBits, values = w.bitLen()-before, len(first)
	w.intCol(rest)
	return valueBits, values
}

func flagsOf(r Reading) byte { return byte(r.Quality)&0x3 | byte(r.Clock)<<2 }

func runsBefore(ts []int64) int {
	n := 0
	for i := range ts {
		if i == 0 || ts[i] != ts[i-1] {
			n++
		}
	}
	return n - 1
}

// writeRuns writes run-length encoded runs starting at starts (starts[0] is
// 0), calling head for each run's first reading.
func writeRuns(w *bitWriter, starts []int, n int, head func(i int)) {
	w.uvarint(uint64(len(starts)))
	for k, s := range starts {
		if k < len(starts)-1 {
			w.uvarint(uint64(starts[k+1] - s - 1))
		}
		head(s)
	}
}

// splitValues returns the deltas of the non-exception readings: against
// the reference for a series' first value in the batch, against its
// previous value for the others. m(i) is reading i's scaled value.
func splitValues(c *CompactContext, idx, exc []int, m func(i int) int64) (first, rest []int64) {
	last := make(map[int]int64, len(c.Series))
	k := 0
	for i, s := range idx {
		if k < len(exc) && exc[k] == i {
			k++
			continue
		}
		if p, ok := last[s]; ok {
			rest = append(rest, m(i)-p)
		} else {
			first = append(first, m(i)-c.Ref[s])
		}
		last[s] = m(i)
	}
	return first, rest
}

// readRuns reads runs covering n readings, calling head for each run with
// its first reading and its length.
func (r *bitReader) readRuns(n int, what string, head func(i, length int)) {
	runs := r.uvarint(what + " runs")
	if r.err == nil && (runs == 0 || runs > uint64(n)) {
		r.err = malformed("%d %s runs for %d readings", runs, what, n)
	}
	for k, i := uint64(0), 0; k < runs && r.err == nil; k++ {
		at := i
		var length uint64
		if k == runs-1 {
			length = uint64(n - i)
		} else {
			length = r.uvarint(what+" run length") + 1
		}
		if r.err == nil && (length == 0 || length > uint64(n-i) || (k < runs-1 && length == uint64(n-i))) {
			r.err = malformed("%s run %d: length %d does not fit %d readings", what, k, length, n)
		}
		if r.err == nil {
			head(at, int(length))
		}
		i += int(length)
	}
}

// readCompactBody reads n readings against c.
func (r *bitReader) readCompactBody(c *CompactContext, n int) ([]Reading, error) {
	nser := len(c.Series)
	if nser == 0 {
		return nil, malformed("%d readings against a context without series", n)
	}
	idx := make([]int, n)
	r.readRuns(n, "series", func(i, length int) {
		s := r.uvarint("series index")
		if r.err == nil && s >= uint64(nser) {
			r.err = malformed("series index %d is outside the dictionary of %d", s, nser)
		}
		for k := range length {
			idx[i+k] = (int(s) + k) % nser
		}
	})
	flags := make([]byte, n)
	r.readRuns(n, "flags", func(i, length int) {
		f := byte(r.read(5, "flags"))
		for k := range length {
			flags[i+k] = f
		}
	})
	ts := r.timeCol(n, c.Epoch)
	nexc := r.uvarint("exception count")
	if r.err == nil && nexc > uint64(n) {
		r.err = malformed("%d exceptions in %d readings", nexc, n)
	}
	if r.err == nil && 64*nexc > r.left() {
		r.err = malformed("%d exceptions do not fit in %d bits", nexc, r.left())
	}
	if r.err != nil {
		return nil, r.err
	}
	rs := make([]Reading, n)
	exc := make([]int, 0, nexc)
	for i := -1; uint64(len(exc)) < nexc && r.err == nil; {
		gap := r.uvarint("exception gap")
		if r.err == nil && gap >= uint64(n-i-1) {
			r.err = malformed("exception %d is past reading %d", len(exc), n)
			break
		}
		i += int(gap) + 1
		exc = append(exc, i)
		rs[i].Value = math.Float64frombits(r.read(64, "exception"))
	}
	if r.err != nil {
		return nil, r.err
	}
	// Count the two value columns, then read them.
	nfirst, nrest := 0, 0
	seen := make(map[int]bool, nser)
	k := 0
	for i, s := range idx {
		if k < len(exc) && exc[k] == i {
			k++
			continue
		}
		if seen[s] {
			nrest++
		} else {
			nfirst++
			seen[s] = true
		}
	}
	first := r.intCol(nfirst, "values")
	rest := r.intCol(nrest, "value steps")
	if r.err != nil {
		return nil, r.err
	}
	last := make(map[int]int64, nser)
	k = 0
	for i, s := range idx {
		def := c.Series[s]
		rd := &rs[i]
		rd.Device, rd.Metric, rd.Unit = def.Device, def.Metric, def.Unit
		rd.Time = time.Unix(0, ts[i]).UTC()
		rd.Quality, rd.Clock = Quality(flags[i]&0x3), ClockQuality(flags[i]>>2)
		if k < len(exc) && exc[k] == i {
			k++
			continue
		}
		var d, m int64
		p, ok := last[s]
		if ok {
			d, rest = rest[0], rest[1:]
		} else {
			d, first, p = first[0], first[1:], c.Ref[s]
		}
		if d < -2*maxScaled || d > 2*maxScaled || p+d < -maxScaled || p+d > maxScaled {
			return nil, malformed("reading %d: scaled value %d%+d is outside ±2^53", i, p, d)
		}
		m = p + d
		last[s] = m
		rd.Value = scaledValue(m, def.Exp)
	}
	return rs, nil
}

// appendUint32 is big-endian, as the context ID travels.
func appendUint32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
