package telemetry

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
)

// The compact codec's body is one bit stream, least significant bit first:
// a field of n bits holding v puts v's bit 0 in the lowest unused bit of the
// current byte. Varints inside it are LEB128 bytes written 8 bits at a time.

// bitWriter appends bits to a byte slice.
type bitWriter struct {
	out  []byte
	acc  uint64 // bits not yet in out, low bits first
	nacc uint   // how many (< 8 between calls)
}

// write appends the low n bits of v (n ≤ 64).
func (w *bitWriter) write(v uint64, n uint) {
	if n > 32 {
		w.write(v, 32)
		v >>= 32
		n -= 32
	}
	if n == 0 {
		return
	}
	w.acc |= (v & (1<<n - 1)) << w.nacc
	w.nacc += n
	for w.nacc >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nacc -= 8
	}
}

// unary writes q one bits, then a zero bit.
func (w *bitWriter) unary(q uint64) {
	for q > 32 {
		w.write(1<<32-1, 32)
		q -= 32
	}
	w.write(1<<q-1, uint(q)+1)
}

func (w *bitWriter) uvarint(v uint64) {
	for v >= 0x80 {
		w.write(v&0x7f|0x80, 8)
		v >>= 7
	}
	w.write(v, 8)
}

func (w *bitWriter) varint(v int64) { w.uvarint(zigzag(v)) }

// append appends o's bits.
func (w *bitWriter) append(o *bitWriter) {
	for _, b := range o.out {
		w.write(uint64(b), 8)
	}
	w.write(o.acc, o.nacc)
}

// bitLen is how many bits have been written.
func (w *bitWriter) bitLen() int { return 8*len(w.out) + int(w.nacc) }

// bytes pads the last byte with zero bits and returns the stream.
func (w *bitWriter) bytes() []byte {
	if w.nacc > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc, w.nacc = 0, 0
	}
	return w.out
}

// bitReader consumes a bit stream, remembering the first error.
type bitReader struct {
	b   []byte
	pos uint64 // in bits
	err error
}

// left is how many bits remain.
func (r *bitReader) left() uint64 { return 8*uint64(len(r.b)) - r.pos }

func (r *bitReader) read(n uint, what string) uint64 {
	if r.err != nil {
		return 0
	}
	if uint64(n) > r.left() {
		r.err = malformed("%s: %d bits past the end", what, n)
		return 0
	}
	var v uint64
	for got := uint(0); got < n; {
		off := uint(r.pos & 7)
		take := min(8-off, n-got)
		v |= (uint64(r.b[r.pos>>3]) >> off & (1<<take - 1)) << got
		got += take
		r.pos += uint64(take)
	}
	return v
}

func (r *bitReader) uvarint(what string) uint64 {
	var buf [binary.MaxVarintLen64]byte
	for i := range buf {
		buf[i] = byte(r.read(8, what))
		if r.err != nil {
			return 0
		}
		if buf[i] < 0x80 {
			v, n := binary.Uvarint(buf[:i+1])
			if n <= 0 {
				break
			}
			return v
		}
	}
	r.err = malformed("%s: bad varint", what)
	return 0
}

func (r *bitReader) varint(what string) int64 { return unzigzag(r.uvarint(what)) }

// tail returns the whole bytes after the stream's last (padded) byte.
func (r *bitReader) tail() []byte { return r.b[(r.pos+7)/8:] }

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// An integer column holds n int64 values whose count the reader knows:
//
//	8 bits  mode: 0…64 = frame of reference, that many bits per value;
//	        0x41 = bounded: a uvarint span follows and each value is a
//	        truncated binary code of 0…span;
//	        0x80|k (k ≤ 63) = Rice code with parameter k of zigzag(v − base)
//	varint  base (the minimum for the first two modes)
//	…       the values
//
// The writer picks whichever mode is shortest. Arithmetic wraps at 64 bits,
// so every int64 survives and every bit pattern decodes to some int64.
const (
	colBounded = 0x41
	colRice    = 0x80
	maxRiceK   = 63
	// maxUnary bounds a Rice quotient the writer produces; the reader is
	// bounded by the stream's length.
	maxUnary = 256
)

func (w *bitWriter) intCol(vs []int64) {
	if len(vs) == 0 {
		return
	}
	lo, hi := vs[0], vs[0]
	for _, v := range vs {
		lo, hi = min(lo, v), max(hi, v)
	}
	span := uint64(hi) - uint64(lo)
	width := uint(bits.Len64(span))
	bestMode, bestCost := byte(width), 8*uvarintLen(zigzag(lo))+len(vs)*int(width)
	if span < 1<<62 {
		if c := 8*uvarintLen(zigzag(lo)) + 8*uvarintLen(span) + truncCost(vs, lo, span); c < bestCost {
			bestMode, bestCost = colBounded, c
		}
	}
	base := median(vs)
	for k := uint(0); k <= maxRiceK && k <= width+1; k++ {
		c, ok := riceCost(vs, base, k)
		if ok && 8*uvarintLen(zigzag(base))+c < bestCost {
			bestMode, bestCost = colRice|byte(k), 8*uvarintLen(zigzag(base))+c
		}
	}
	w.write(uint64(bestMode), 8)
	switch {
	case bestMode == colBounded:
		w.varint(lo)
		w.uvarint(span)
		for _, v := range vs {
			w.truncBinary(uint64(v)-uint64(lo), span)
		}
	case bestMode&colRice != 0:
		k := uint(bestMode &^ colRice)
		w.varint(base)
		for _, v := range vs {
			z := zigzag(int64(uint64(v) - uint64(base)))
			w.unary(z >> k)
			w.write(z, k)
		}
	default:
		w.varint(lo)
		for _, v := range vs {
			w.write(uint64(v)-uint64(lo), width)
		}
	}
}

// truncBinary writes x in 0…span as a truncated binary code: the first
// u = 2^(k+1) − n of the n = span+1 symbols take k bits, the others k+1.
func (w *bitWriter) truncBinary(x, span uint64) {
	n := span + 1
	k := uint(bits.Len64(n) - 1)
	u := uint64(1)<<(k+1) - n
	if x < u {
		w.write(x, k)
		return
	}
	c := x + u
	w.write(c>>1, k)
	w.write(c&1, 1)
}

func truncCost(vs []int64, lo int64, span uint64) int {
	n := span + 1
	k := bits.Len64(n) - 1
	u := uint64(1)<<(k+1) - n
	c := 0
	for _, v := range vs {
		c += k
		if uint64(v)-uint64(lo) >= u {
			c++
		}
	}
	return c
}

func riceCost(vs []int64, base int64, k uint) (int, bool) {
	c := 0
	for _, v := range vs {
		q := zigzag(int64(uint64(v)-uint64(base))) >> k
		if q > maxUnary {
			return 0, false
		}
		c += int(q) + 1 + int(k)
	}
	return c, true
}

func median(vs []int64) int64 {
	if len(vs) > 4096 { // the base only has to be near the middle
		vs = vs[:4096]
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[len(s)/2]
}

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// intCol reads a column of n values (n is bounded by the caller).
func (r *bitReader) intCol(n int, what string) []int64 {
	if n == 0 || r.err != nil {
		return nil
	}
	mode := byte(r.read(8, what+" mode"))
	base := r.varint(what + " base")
	if r.err != nil {
		return nil
	}
	var span uint64
	var per uint64 // the fewest bits one value takes
	switch {
	case mode <= 64:
		per = uint64(mode)
	case mode == colBounded:
		if span = r.uvarint(what + " span"); span >= 1<<62 {
			r.err = malformed("%s: span %d is too large", what, span)
		}
		per = uint64(bits.Len64(span+1) - 1)
	case mode&colRice != 0 && mode&^colRice <= maxRiceK:
		per = uint64(mode&^colRice) + 1
	default:
		r.err = malformed("%s: unknown column mode %#02x", what, mode)
	}
	if r.err != nil {
		return nil
	}
	if per*uint64(n) > r.left() {
		r.err = malformed("%s: %d values of at least %d bits do not fit in %d bits", what, n, per, r.left())
		return nil
	}
	out := make([]int64, n)
	for i := range out {
		var u uint64
		switch {
		case mode <= 64:
			u = r.read(uint(mode), what)
		case mode == colBounded:
			u = r.truncBinary(span, what)
		default:
			u = uint64(r.rice(uint(mode&^colRice), what))
		}
		out[i] = int64(uint64(base) + u)
	}
	if r.err != nil {
		return nil
	}
	return out
}

func (r *bitReader) truncBinary(span uint64, what string) uint64 {
	n := span + 1
	k := uint(bits.Len64(n) - 1)
	u := uint64(1)<<(k+1) - n
	x := r.read(k, what)
	if x < u {
		return x
	}
	return (x<<1 | r.read(1, what)) - u
}

// rice reads one Rice-coded value and returns base-relative v (unzigzagged).
func (r *bitReader) rice(k uint, what string) int64 {
	var q uint64
	for r.err == nil && r.read(1, what) == 1 {
		q++
	}
	if k < 64 && q > math.MaxUint64>>k {
		r.err = malformed("%s: Rice quotient %d overflows", what, q)
	}
	return unzigzag(q<<k | r.read(k, what))
}
