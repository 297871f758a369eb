package sl651

import (
	"encoding/hex"
	"fmt"
)

// Control characters, SL 651-2014 table 10.
const (
	SOH = 0x01 // start of an ASCII frame (HEX/BCD frames start with 7E7E)
	STX = 0x02 // start of the body
	SYN = 0x16 // start of the body of one packet of a multi-packet message (M3)
	ETX = 0x03 // end of the message, nothing follows
	ETB = 0x17 // end of this packet, more follow
	ENQ = 0x05 // end of a down-link query or command
	EOT = 0x04 // end of a down-link confirmation: transmission over, the station may leave
	ACK = 0x06 // end of a down-link confirmation when more frames follow
	NAK = 0x15 // end of a down-link frame asking for a packet again
	ESC = 0x1B // end of a down-link confirmation: transmission over, the station stays on line
)

// Encoding is a frame's encoding.
type Encoding uint8

const (
	HEX   Encoding = iota // HEX/BCD (6.5): binary header and BCD data
	ASCII                 // ASCII characters (6.4)
)

func (e Encoding) String() string {
	if e == ASCII {
		return "ASCII"
	}
	return "HEX"
}

// Function codes, appendix B (the ones this package reads the body of, and
// the common queries).
const (
	FnKeepAlive     = 0x2F // 链路维持报
	FnTest          = 0x30 // 测试报
	FnInterval      = 0x31 // 均匀时段水文信息报
	FnTimed         = 0x32 // 遥测站定时报
	FnAdded         = 0x33 // 遥测站加报报
	FnHourly        = 0x34 // 遥测站小时报
	FnManual        = 0x35 // 遥测站人工置数报
	FnPicture       = 0x36 // 图片报
	FnQueryRealtime = 0x37 // 中心站查询遥测站实时数据
	FnQueryPeriod   = 0x38 // 中心站查询遥测站时段数据
	FnQueryManual   = 0x39 // 中心站查询遥测站人工置数
	FnQueryElements = 0x3A // 中心站查询遥测站指定要素数据
)

// Limits.
const (
	MaxBody   = 4095 // the length field's 12 bits (tables 16, 20)
	hexHead   = 2 + 1 + 5 + 2 + 1 + 2
	asciiHead = 1 + 2 + 10 + 4 + 2 + 4
	// MaxFrame is the longest frame of either encoding.
	MaxFrame = asciiHead + 1 + MaxBody + 1 + 4
)

// Address is a telemetry station address, 5 bytes A5…A1 (6.2.3.2): for a
// hydrological station 00 then 4 BCD bytes after SL 502; for others 3 BCD
// bytes of the administrative division and 2 HEX bytes.
type Address [5]byte

// String writes the address as 10 hex digits, which for BCD bytes are the
// decimal digits ("0012345678").
func (a Address) String() string { return fmt.Sprintf("%X", a[:]) }

// ParseAddress reads 10 hex digits.
func ParseAddress(s string) (Address, error) {
	var a Address
	if len(s) != 10 {
		return a, fail(ErrHeader, "address %q is not 10 hex digits", s)
	}
	if _, err := hex.Decode(a[:], []byte(s)); err != nil {
		return a, fail(ErrHeader, "address %q is not 10 hex digits", s)
	}
	return a, nil
}

// Frame is one SL 651 message.
type Frame struct {
	Encoding Encoding
	Down     bool    // false: up (station → central station), true: down
	Center   uint8   // central station address, 1–255
	Station  Address // telemetry station address
	Password uint16
	Function uint8
	// Start is STX, or SYN for one packet of a multi-packet message (M3),
	// which then has Total packets of which this is number Seq (1–4095).
	Start      byte
	Total, Seq int
	// Body is the message text (报文正文): bytes for HEX, characters for
	// ASCII.
	Body []byte
	// End is ETX or ETB up; ENQ, ACK, NAK, EOT or ESC down.
	End byte
}

// Decode checks one whole frame of either encoding, nothing before or after
// it, and returns it; Body is a sub-slice of b.
func Decode(b []byte) (Frame, error) {
	switch {
	case len(b) >= 2 && b[0] == 0x7E && b[1] == 0x7E:
		return decodeHex(b)
	case len(b) >= 1 && b[0] == SOH:
		return decodeASCII(b)
	case len(b) == 1 && b[0] == 0x7E:
		return Frame{}, fail(ErrTruncated, "1 byte")
	}
	return Frame{}, fail(ErrHeader, "frame starts with % X, not 7E7E or SOH", b[:min(len(b), 2)])
}

func decodeHex(b []byte) (Frame, error) {
	var f Frame
	if len(b) < hexHead+1 {
		return f, fail(ErrTruncated, "%d bytes, header cut", len(b))
	}
	dirLen := int(b[11])<<8 | int(b[12])
	if err := f.setDirLen(dirLen >> 12); err != nil {
		return f, err
	}
	if f.Down {
		copy(f.Station[:], b[2:7])
		f.Center = b[7]
	} else {
		f.Center = b[2]
		copy(f.Station[:], b[3:8])
	}
	f.Password = uint16(b[8])<<8 | uint16(b[9])
	f.Function = b[10]
	n := dirLen & 0xFFF
	f.Start = b[hexHead]
	pos := hexHead + 1
	switch f.Start {
	case STX:
	case SYN:
		if len(b) < pos+3 {
			return f, fail(ErrTruncated, "%d bytes, packet numbers cut", len(b))
		}
		v := int(b[pos])<<16 | int(b[pos+1])<<8 | int(b[pos+2])
		f.Total, f.Seq = v>>12, v&0xFFF
		pos += 3
		n -= 3
	default:
		return f, fail(ErrControl, "start %#02x is not STX or SYN", f.Start)
	}
	want, err := f.cut(b, pos, n, 2)
	if err != nil {
		return f, err
	}
	if got, c := uint16(b[want-2])<<8|uint16(b[want-1]), CRC16(b[:want-2]); got != c {
		return f, fail(ErrCRC, "CRC %04X, computed %04X", got, c)
	}
	return f, f.check()
}

func decodeASCII(b []byte) (Frame, error) {
	var f Frame
	f.Encoding = ASCII
	if len(b) < asciiHead+1 {
		return f, fail(ErrTruncated, "%d bytes, header cut", len(b))
	}
	hx := func(s []byte, what string) (int, error) {
		v := 0
		for _, c := range s {
			d, ok := hexDigit(c)
			if !ok {
				return 0, fail(ErrHeader, "%s %q is not hex digits", what, s)
			}
			v = v<<4 | int(d)
		}
		return v, nil
	}
	dir, ok := hexDigit(b[19])
	if !ok {
		return f, fail(ErrLength, "up/down flag %q", b[19])
	}
	if err := f.setDirLen(int(dir)); err != nil {
		return f, err
	}
	ctr, st := b[1:3], b[3:13]
	if f.Down {
		st, ctr = b[1:11], b[11:13]
	}
	c, err := hx(ctr, "central station")
	if err != nil {
		return f, err
	}
	f.Center = uint8(c)
	if _, err := hx(st, "station address"); err != nil {
		return f, err
	}
	f.Station, _ = ParseAddress(string(st))
	pw, err := hx(b[13:17], "password")
	if err != nil {
		return f, err
	}
	f.Password = uint16(pw)
	fn, err := hx(b[17:19], "function")
	if err != nil {
		return f, err
	}
	f.Function = uint8(fn)
	n, err := hx(b[20:23], "length")
	if err != nil {
		return f, fail(ErrLength, "length %q is not hex digits", b[20:23])
	}
	f.Start = b[asciiHead]
	pos := asciiHead + 1
	switch f.Start {
	case STX:
	case SYN:
		if len(b) < pos+6 {
			return f, fail(ErrTruncated, "%d bytes, packet numbers cut", len(b))
		}
		if f.Total, err = hx(b[pos:pos+3], "packet count"); err != nil {
			return f, err
		}
		if f.Seq, err = hx(b[pos+3:pos+6], "packet number"); err != nil {
			return f, err
		}
		pos += 6
		n -= 6
	default:
		return f, fail(ErrControl, "start %#02x is not STX or SYN", f.Start)
	}
	want, err := f.cut(b, pos, n, 4)
	if err != nil {
		return f, err
	}
	got, err := hx(b[want-4:want], "CRC")
	if err != nil {
		return f, fail(ErrCRC, "CRC %q is not 4 hex digits", b[want-4:want])
	}
	if c := CRC16(b[:want-4]); uint16(got) != c {
		return f, fail(ErrCRC, "CRC %04X, computed %04X", got, c)
	}
	return f, f.check()
}

// cut takes the body of n bytes at pos, the end character after it and a
// CRC of crcLen bytes, which must end b; it returns where the CRC ends.
func (f *Frame) cut(b []byte, pos, n, crcLen int) (int, error) {
	if n < 0 {
		return 0, fail(ErrLength, "length field shorter than the packet numbers")
	}
	want := pos + n + 1 + crcLen
	if len(b) < want {
		return 0, fail(ErrTruncated, "%d of %d bytes", len(b), want)
	}
	if len(b) > want {
		return 0, fail(ErrLength, "%d bytes after a body of %d", len(b)-want, n)
	}
	f.Body = b[pos : pos+n]
	f.End = b[pos+n]
	return want, nil
}

func (f *Frame) setDirLen(dir int) error {
	switch dir {
	case 0:
	case 8:
		f.Down = true
	default:
		return fail(ErrLength, "up/down flag %X is not 0 or 8", dir)
	}
	return nil
}

// check verifies what Decode and Encode share: the end character for the
// direction, the packet numbers, the body length.
func (f *Frame) check() error {
	if f.Down {
		switch f.End {
		case ENQ, ACK, NAK, EOT, ESC:
		default:
			return fail(ErrControl, "down-link end %#02x is not ENQ, ACK, NAK, EOT or ESC", f.End)
		}
	} else if f.End != ETX && f.End != ETB {
		return fail(ErrControl, "up-link end %#02x is not ETX or ETB", f.End)
	}
	switch f.Start {
	case STX:
		if f.Total != 0 || f.Seq != 0 {
			return fail(ErrControl, "packet numbers %d/%d after STX", f.Seq, f.Total)
		}
	case SYN:
		if f.Total < 1 || f.Total > 4095 || f.Seq < 1 || f.Seq > f.Total {
			return fail(ErrHeader, "packet %d of %d", f.Seq, f.Total)
		}
	default:
		return fail(ErrControl, "start %#02x is not STX or SYN", f.Start)
	}
	if f.bodyLen() > MaxBody {
		return fail(ErrOversize, "body of %d bytes, at most %d", f.bodyLen(), MaxBody)
	}
	return nil
}

// bodyLen is the length field's value: the bytes between the start and end
// characters, packet numbers included.
func (f *Frame) bodyLen() int {
	n := len(f.Body)
	if f.Start == SYN {
		if f.Encoding == ASCII {
			n += 6
		} else {
			n += 3
		}
	}
	return n
}

// Encode writes f with its length and CRC after the same checks as Decode.
func (f Frame) Encode() ([]byte, error) { return f.Append(nil) }

// Append appends the encoded f to dst (see Encode).
func (f Frame) Append(dst []byte) ([]byte, error) {
	if err := f.check(); err != nil {
		return dst, err
	}
	start := len(dst)
	dir := 0
	if f.Down {
		dir = 8
	}
	n := f.bodyLen()
	if f.Encoding == ASCII {
		dst = append(dst, SOH)
		ctr := fmt.Sprintf("%02X", f.Center)
		if f.Down {
			dst = append(append(dst, f.Station.String()...), ctr...)
		} else {
			dst = append(append(dst, ctr...), f.Station.String()...)
		}
		dst = fmt.Appendf(dst, "%04X%02X%X%03X", f.Password, f.Function, dir, n)
		dst = append(dst, f.Start)
		if f.Start == SYN {
			dst = fmt.Appendf(dst, "%03X%03X", f.Total, f.Seq)
		}
		dst = append(append(dst, f.Body...), f.End)
		return fmt.Appendf(dst, "%04X", CRC16(dst[start:])), nil
	}
	dst = append(dst, 0x7E, 0x7E)
	if f.Down {
		dst = append(append(dst, f.Station[:]...), f.Center)
	} else {
		dst = append(append(dst, f.Center), f.Station[:]...)
	}
	dst = append(dst, byte(f.Password>>8), byte(f.Password), f.Function, byte(dir<<4|n>>8), byte(n), f.Start)
	if f.Start == SYN {
		v := f.Total<<12 | f.Seq
		dst = append(dst, byte(v>>16), byte(v>>8), byte(v))
	}
	dst = append(append(dst, f.Body...), f.End)
	c := CRC16(dst[start:])
	return append(dst, byte(c>>8), byte(c)), nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
