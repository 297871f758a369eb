package sl651

import (
	"errors"
	"fmt"
)

// Refusal kinds: Error.Kind, for counters and logs.
const (
	KindGarbage     = "garbage"     // bytes outside a frame (Reader only)
	KindHeader      = "header"      // no 7E7E or SOH, or a header field outside its definition
	KindLength      = "length"      // the up/down flag is not 0 or 8, or the length does not match
	KindOversize    = "oversize"    // a body longer than 4095 bytes
	KindTruncated   = "truncated"   // the input ends inside a frame
	KindCRC         = "crc"         // the CRC is wrong (or, in ASCII, not 4 hex digits)
	KindControl     = "control"     // a start or end character not allowed where it stands
	KindBody        = "body"        // the body ends inside a field, or holds what the report cannot
	KindBCD         = "bcd"         // a digit outside 0–9 in BCD data, or an impossible date
	KindElement     = "element"     // an element identifier this package does not know
	KindDefinition  = "definition"  // an element's data definition byte disagrees with appendix C
	KindUnsupported = "unsupported" // a function or form this package does not read yet
)

// Sentinels, one per kind; every *Error wraps exactly one.
var (
	ErrGarbage     = errors.New("sl651: garbage between frames")
	ErrHeader      = errors.New("sl651: bad header")
	ErrLength      = errors.New("sl651: bad length field")
	ErrOversize    = errors.New("sl651: too long")
	ErrTruncated   = errors.New("sl651: truncated frame")
	ErrCRC         = errors.New("sl651: bad CRC")
	ErrControl     = errors.New("sl651: bad control character")
	ErrBody        = errors.New("sl651: bad body")
	ErrBCD         = errors.New("sl651: bad BCD")
	ErrElement     = errors.New("sl651: unknown element")
	ErrDefinition  = errors.New("sl651: bad data definition")
	ErrUnsupported = errors.New("sl651: unsupported")
)

var kindOf = map[error]string{
	ErrGarbage: KindGarbage, ErrHeader: KindHeader, ErrLength: KindLength, ErrOversize: KindOversize,
	ErrTruncated: KindTruncated, ErrCRC: KindCRC, ErrControl: KindControl, ErrBody: KindBody,
	ErrBCD: KindBCD, ErrElement: KindElement, ErrDefinition: KindDefinition, ErrUnsupported: KindUnsupported,
}

// Error is a refusal: its Kind names what was wrong, Msg the detail.
type Error struct {
	Kind string
	Msg  string
	err  error
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
