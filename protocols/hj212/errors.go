package hj212

import (
	"errors"

	"github.com/fieldwatch/fieldwatch/protocols/internal/refusal"
)

// Refusal kinds: Error.Kind, for counters and logs.
const (
	KindGarbage   = "garbage"   // bytes outside a frame (Reader only)
	KindHeader    = "header"    // no "##" where a frame must start
	KindLength    = "length"    // the length field is not 4 digits, or does not match
	KindOversize  = "oversize"  // a data segment, CP or field longer than the standard allows
	KindTruncated = "truncated" // the input ends inside a frame
	KindCRC       = "crc"       // the CRC field is not 4 hex digits, or is wrong
	KindTail      = "tail"      // no "\r\n" after the CRC
	KindSyntax    = "syntax"    // the data segment or CP is not Name=Value;… as the standard writes it
	KindField     = "field"     // a field's value is outside its definition (QN, ST, CN, Flag, …)
	KindMissing   = "missing"   // a required field (CN, CP) is absent
	KindSplit     = "split"     // PNUM/PNO inconsistent with Flag, or a packet that cannot be split
)

// Sentinels, one per kind; every *Error wraps exactly one.
var (
	ErrGarbage   = errors.New("hj212: garbage between frames")
	ErrHeader    = errors.New("hj212: no frame header")
	ErrLength    = errors.New("hj212: bad length field")
	ErrOversize  = errors.New("hj212: too long")
	ErrTruncated = errors.New("hj212: truncated frame")
	ErrCRC       = errors.New("hj212: bad CRC")
	ErrTail      = errors.New("hj212: no CR LF after the CRC")
	ErrSyntax    = errors.New("hj212: syntax error")
	ErrField     = errors.New("hj212: bad field value")
	ErrMissing   = errors.New("hj212: required field missing")
	ErrSplit     = errors.New("hj212: bad packet split")
)

var kindOf = map[error]string{
	ErrGarbage: KindGarbage, ErrHeader: KindHeader, ErrLength: KindLength, ErrOversize: KindOversize,
	ErrTruncated: KindTruncated, ErrCRC: KindCRC, ErrTail: KindTail, ErrSyntax: KindSyntax,
	ErrField: KindField, ErrMissing: KindMissing, ErrSplit: KindSplit,
}

// Error is a refusal: its Kind names what was wrong, Msg the detail; it
// unwraps to one of the Err… sentinels.
type Error = refusal.Error

func fail(sentinel error, format string, args ...any) *Error {
	return refusal.New(sentinel, kindOf[sentinel], format, args...)
}

// Kind returns the refusal kind of err ("" when err is not a refusal).
func Kind(err error) string { return refusal.Kind(err) }
