package rfid

import (
	"strconv"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
)

// maxNational is the largest ISO 11784 national number (38 bits).
const maxNational = 1<<38 - 1

// parseFDXB parses one line of a 134.2 kHz reader:
//
//	LA 982 000001088420          Allflex default (animal tag)
//	LA 00000 0 982 000001088420  TIRIS S2000 (reserved, data block flag)
//	LR 0006 0000000018514348     Allflex industrial-coded HDX
//	982 000001088420             code and national number
//	982000001088420              15-digit form
//	3E7.1CBE991A14               dot-hex (code.national)
func parseFDXB(d *Decoder, line []byte, now time.Time, out *stream.Output) {
	var f [5][]byte
	n := fields(line, f[:])
	var key [20]byte
	var id []byte
	tagType, animal, hdx := TagFDXB, "unknown", "unknown"
	var block []byte
	kind := ""
	switch {
	case n == 3 && string(f[0]) == "LA":
		animal = "true"
		id, kind = iso(key[:0], f[1], f[2])
	case n == 5 && string(f[0]) == "LA":
		animal = "true"
		if !digits(f[1], 5) || !digits(f[2], 1) || f[2][0] > '1' {
			kind = StatFormat
			break
		}
		block = f[2]
		id, kind = iso(key[:0], f[3], f[4])
	case n == 3 && string(f[0]) == "LR":
		tagType, animal, hdx = TagHDX, "false", "true"
		if !digits(f[1], 4) || !digits(f[2], 16) {
			kind = StatFormat
			break
		}
		id = append(append(key[:0], f[1]...), f[2]...)
	case n == 2:
		id, kind = iso(key[:0], f[0], f[1])
	case n == 1 && len(f[0]) == 15:
		id, kind = iso(key[:0], f[0][:3], f[0][3:])
	case n == 1:
		id, kind = dotHex(key[:0], f[0])
	default:
		kind = StatFormat
	}
	if kind == "" && allZero(id) {
		kind = StatZeroID
	}
	if kind != "" {
		d.stats.Count(kind)
		return
	}
	d.stats.Accepted(now)
	v := d.visit(id, now, out)
	if v == nil {
		return
	}
	if v.count == 0 {
		v.tagType = tagType
		v.extra = []attr{{AttrAnimal, animal}, {AttrHDX, hdx}}
		if block != nil {
			v.extra = append(v.extra, attr{AttrDataBlock, string(block)})
		}
	}
	d.hit(v, now, out)
}

// iso appends the 15-digit id of a 3-digit code and 12-digit national
// number to dst, or returns a Stat kind.
func iso(dst, code, national []byte) ([]byte, string) {
	if !digits(code, 3) || !digits(national, 12) {
		return nil, StatFormat
	}
	var n uint64
	for _, c := range national {
		n = n*10 + uint64(c-'0')
	}
	if n > maxNational {
		return nil, StatRange
	}
	return append(append(dst, code...), national...), ""
}

// dotHex appends the 15-digit id of "CCC.NNNNNNNNNN" (hex, up to 3 and
// 10 digits) to dst, or returns a Stat kind.
func dotHex(dst, b []byte) ([]byte, string) {
	c, n, ok := cutByte(b, '.')
	if !ok || len(c) < 1 || len(c) > 3 || len(n) < 1 || len(n) > 10 {
		return nil, StatFormat
	}
	code, err1 := strconv.ParseUint(string(c), 16, 64)
	national, err2 := strconv.ParseUint(string(n), 16, 64)
	if err1 != nil || err2 != nil {
		return nil, StatFormat
	}
	if code > 999 || national > maxNational {
		return nil, StatRange
	}
	dst = appendPadded(dst, code, 3)
	return appendPadded(dst, national, 12), ""
}

// cutByte splits b around the first sep.
func cutByte(b []byte, sep byte) (before, after []byte, found bool) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(dst []byte, n uint64, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendUint(tmp[:0], n, 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// allZero reports whether id holds only '0' characters.
func allZero(id []byte) bool {
	for _, c := range id {
		if c != '0' {
			return false
		}
	}
	return true
}
