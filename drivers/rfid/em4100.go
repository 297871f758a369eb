package rfid

import (
	"strconv"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
)

const (
	stx = 0x02
	etx = 0x03
)

// emFramer frames and parses EM4100 reader output: STX, 10 hex digits of
// data, 2 hex digits of XOR checksum, [CR LF,] ETX.
type emFramer struct {
	crlf    bool     // ID-12LA: CR LF before ETX
	in      bool     // inside a frame (after STX)
	n       int      // bytes of body collected
	body    [14]byte // between STX and ETX
	garbage bool     // in a run of bytes outside frames, already counted
}

func (f *emFramer) size() int {
	if f.crlf {
		return 14
	}
	return 12
}

func (f *emFramer) start(d *Decoder, _ time.Time, _ *stream.Output) {
	if f.in {
		d.stats.Count(StatCut)
	}
	f.in, f.n, f.garbage = false, 0, false
}

func (*emFramer) tick(*Decoder, time.Time, *stream.Output) {}

func (f *emFramer) feed(d *Decoder, chunk []byte, now time.Time, out *stream.Output) {
	for _, b := range chunk {
		switch {
		case b == stx:
			if f.in {
				d.stats.Count(StatCut)
			}
			f.in, f.n, f.garbage = true, 0, false
		case !f.in:
			if !f.garbage {
				f.garbage = true
				d.stats.Count(StatGarbage)
			}
		case b == etx:
			f.in = false
			f.frame(d, f.body[:f.n], now, out)
		case f.n == f.size():
			d.stats.Count(StatOverlong)
			f.in, f.garbage = false, true // the rest up to the next STX is that frame's
		default:
			f.body[f.n] = b
			f.n++
		}
	}
}

// frame checks and reports one frame body (between STX and ETX).
func (f *emFramer) frame(d *Decoder, body []byte, now time.Time, out *stream.Output) {
	if len(body) != f.size() {
		d.stats.Count(StatLength)
		return
	}
	if f.crlf && (body[12] != '\r' || body[13] != '\n') {
		d.stats.Count(StatFormat)
		return
	}
	var id [10]byte
	var sum, zero byte
	for i := 0; i < 6; i++ {
		hi, ok1 := unhex(body[2*i])
		lo, ok2 := unhex(body[2*i+1])
		if !ok1 || !ok2 {
			d.stats.Count(StatFormat)
			return
		}
		v := hi<<4 | lo
		if i < 5 {
			id[2*i], id[2*i+1] = hexDigits[hi], hexDigits[lo]
			sum ^= v
			zero |= v
		} else if v != sum {
			d.stats.Count(StatChecksum)
			return
		}
	}
	if zero == 0 {
		d.stats.Count(StatZeroID)
		return
	}
	d.stats.Accepted(now)
	v := d.visit(id[:], now, out)
	if v == nil {
		return
	}
	if v.count == 0 {
		v.tagType = TagEM4100
		low, _ := strconv.ParseUint(string(id[2:]), 16, 32)
		v.extra = []attr{{AttrDecimal, pad10(low)}}
	}
	d.hit(v, now, out)
}

const hexDigits = "0123456789ABCDEF"

// unhex is the value of hex digit c (either case).
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// pad10 formats n with at least 10 decimal digits.
func pad10(n uint64) string {
	s := strconv.FormatUint(n, 10)
	const zeros = "0000000000"
	if len(s) < len(zeros) {
		s = zeros[len(s):] + s
	}
	return s
}
