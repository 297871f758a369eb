package rfid

import (
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
)

// maxLine bounds a text line; the longest valid one (TIRIS) has 27 bytes.
const maxLine = 64

// lineFramer splits text output into lines ended by CR, LF or ETX. STX
// starts a line (ISO 24631-6 readers send one before each); bytes before
// it are a cut line. Blank lines are skipped; a line holding a control
// character or other binary noise is counted as StatGarbage.
type lineFramer struct {
	parse func(d *Decoder, line []byte, now time.Time, out *stream.Output)
	n     int
	buf   [maxLine]byte
	skip  bool // discarding the rest of a refused line
}

func (f *lineFramer) start(d *Decoder, _ time.Time, _ *stream.Output) { f.restart(d) }

// restart drops the line begun, counting it as StatCut unless blank.
func (f *lineFramer) restart(d *Decoder) {
	if !f.skip && len(trimSpace(f.buf[:f.n])) > 0 {
		d.stats.Count(StatCut)
	}
	f.n, f.skip = 0, false
}

func (*lineFramer) tick(*Decoder, time.Time, *stream.Output) {}

func (f *lineFramer) feed(d *Decoder, chunk []byte, now time.Time, out *stream.Output) {
	for _, b := range chunk {
		switch {
		case b == '\r' || b == '\n' || b == etx:
			if !f.skip {
				if line := trimSpace(f.buf[:f.n]); len(line) > 0 {
					f.parse(d, line, now, out)
				}
			}
			f.n, f.skip = 0, false
		case b == stx:
			f.restart(d)
		case f.skip:
		case b < 0x20 && b != '\t' || b >= 0x7f:
			d.stats.Count(StatGarbage)
			f.skip = true
		case f.n == maxLine:
			d.stats.Count(StatOverlong)
			f.skip = true
		default:
			f.buf[f.n] = b
			f.n++
		}
	}
}

// trimSpace drops spaces and tabs at both ends of b.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// fields splits b at runs of spaces and tabs into at most len(dst)
// fields, returning how many it found; more than len(dst) returns
// len(dst)+1.
func fields(b []byte, dst [][]byte) int {
	n := 0
	for i := 0; i < len(b); {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
		if i == len(b) {
			break
		}
		j := i
		for j < len(b) && b[j] != ' ' && b[j] != '\t' {
			j++
		}
		if n == len(dst) {
			return n + 1
		}
		dst[n] = b[i:j]
		n++
		i = j
	}
	return n
}

// digits reports whether b is n decimal digits.
func digits(b []byte, n int) bool {
	if len(b) != n {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
