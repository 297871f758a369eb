package rfid

import (
	"math/bits"
	"strconv"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
)

// parseWiegand parses a line of 26 '0'/'1' characters, first bit first,
// as H10301: bit 1 even parity over bits 1–13, bits 2–9 facility code,
// bits 10–25 card number, bit 26 odd parity over bits 14–26.
func parseWiegand(d *Decoder, line []byte, now time.Time, out *stream.Output) {
	var w uint32
	for _, c := range line {
		if c != '0' && c != '1' {
			d.stats.Count(StatFormat)
			return
		}
		w = w<<1 | uint32(c-'0')
	}
	if len(line) != 26 {
		d.stats.Count(StatLength)
		return
	}
	if bits.OnesCount32(w>>13)%2 != 0 || bits.OnesCount32(w&0x1FFF)%2 != 1 {
		d.stats.Count(StatParity)
		return
	}
	fc, cn := uint64(w>>17&0xFF), uint64(w>>1&0xFFFF)
	if fc == 0 && cn == 0 {
		d.stats.Count(StatZeroID)
		return
	}
	var key [12]byte
	id := strconv.AppendUint(key[:0], fc, 10)
	id = append(id, ':')
	id = strconv.AppendUint(id, cn, 10)
	d.stats.Accepted(now)
	v := d.visit(id, now, out)
	if v == nil {
		return
	}
	if v.count == 0 {
		v.tagType = TagWiegand26
		v.extra = []attr{{AttrFacility, strconv.FormatUint(fc, 10)}, {AttrCard, strconv.FormatUint(cn, 10)}}
	}
	d.hit(v, now, out)
}
