package hj212

import (
	"bytes"
	"fmt"
)

// Sizes from HJ 212-2017 table 2 (通讯包结构组成表) and table 3.
const (
	MaxData  = 1024               // longest data segment, in bytes
	MaxCP    = 950                // longest "CP=&&…&&", in bytes, name and '=' included
	Overhead = 2 + 4 + 4 + 2      // "##", length, CRC, "\r\n"
	MaxFrame = MaxData + Overhead // longest communication packet
	header   = "##"
	tail     = "\r\n"
	hexUpper = "0123456789ABCDEF"
)

// AppendFrame appends the communication packet carrying data to dst:
// "##", the length of data as 4 decimal digits, data, its CRC16 as 4
// uppercase hex digits, "\r\n". data is the data segment (DataSegment of a
// Packet, or any bytes already in that form); it is not checked beyond its
// length.
func AppendFrame(dst, data []byte) ([]byte, error) {
	if len(data) > MaxData {
		return dst, fail(ErrOversize, "data segment of %d bytes, at most %d", len(data), MaxData)
	}
	n := len(data)
	dst = append(dst, header...)
	dst = append(dst, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
	dst = append(dst, data...)
	c := CRC16(data)
	dst = append(dst, hexUpper[c>>12], hexUpper[c>>8&15], hexUpper[c>>4&15], hexUpper[c&15])
	return append(dst, tail...), nil
}

// Pack returns the communication packet carrying data (see AppendFrame).
func Pack(data []byte) ([]byte, error) { return AppendFrame(make([]byte, 0, len(data)+Overhead), data) }

// Unpack checks one whole communication packet — header, length field, CRC
// and tail, nothing before or after it — and returns its data segment (a
// sub-slice of frame). The CRC's hex digits may be in either case (loggers
// in the field send both); Pack writes uppercase.
func Unpack(frame []byte) ([]byte, error) {
	if len(frame) < 2 || !bytes.HasPrefix(frame, []byte(header)) {
		if len(frame) < 2 && bytes.HasPrefix([]byte(header), frame) {
			return nil, fail(ErrTruncated, "%d bytes", len(frame))
		}
		return nil, fail(ErrHeader, "frame starts with %q", prefix(frame, 2))
	}
	if len(frame) < 6 {
		return nil, fail(ErrTruncated, "%d bytes, the length field is cut", len(frame))
	}
	n, ok := digits4(frame[2:6])
	if !ok {
		return nil, fail(ErrLength, "length field %q is not 4 digits", frame[2:6])
	}
	if n > MaxData {
		return nil, fail(ErrOversize, "length field %d, at most %d", n, MaxData)
	}
	want := n + Overhead
	switch {
	case len(frame) < want:
		if bytes.HasSuffix(frame, []byte(tail)) {
			return nil, fail(ErrLength, "length field %d, but the frame ends after %d bytes of data", n, len(frame)-Overhead)
		}
		return nil, fail(ErrTruncated, "%d of %d bytes", len(frame), want)
	case len(frame) > want:
		if bytes.HasSuffix(frame, []byte(tail)) {
			return nil, fail(ErrLength, "length field %d, but %d bytes of data", n, len(frame)-Overhead)
		}
		return nil, fail(ErrTail, "%d bytes after the frame", len(frame)-want)
	}
	data := frame[6 : 6+n]
	if !bytes.Equal(frame[want-2:], []byte(tail)) {
		return nil, fail(ErrTail, "frame ends with %q", frame[want-2:])
	}
	got, ok := hex4(frame[6+n : 6+n+4])
	if !ok {
		return nil, fail(ErrCRC, "CRC field %q is not 4 hex digits", frame[6+n:6+n+4])
	}
	if c := CRC16(data); got != c {
		return nil, fail(ErrCRC, "CRC %04X, computed %04X", got, c)
	}
	return data, nil
}

func digits4(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) == 4
}

func hex4(b []byte) (uint16, bool) {
	var v uint16
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(d)
	}
	return v, len(b) == 4
}

func prefix(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// quote shortens b for an error message.
func quote(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q…", b[:40])
	}
	return fmt.Sprintf("%q", b)
}
