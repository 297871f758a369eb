package hj212

import (
	"errors"
	"fmt"
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

// Error is a refusal: its Kind names what was wrong, Msg the detail.
type Error struct {
	Kind string
	Msg  string
	err  error // the sentinel
}

func (e *Error) Error() string { return e.err.Error() + ": " + e.Msg }

// Unwrap returns the sentinel, for errors.Is.
func (e *Error) Unwrap() error { return e.err }

func fail(sentinel error, format string, args ...any) *Error {
	return &Error{Kind: kindOf[sentinel], Msg: fmt.Sprintf(format, args...), err: sentinel}
}

// Kind returns the refusal kind of err ("" when err is not from this
// package).
func Kind(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}
