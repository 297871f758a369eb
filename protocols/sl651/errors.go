package sl651

import (
	"errors"

	"github.com/fieldwatch/fieldwatch/protocols/internal/refusal"
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

// Error is a refusal: its Kind names what was wrong, Msg the detail; it
// unwraps to one of the Err… sentinels.
type Error = refusal.Error

func fail(sentinel error, format string, args ...any) *Error {
	return refusal.New(sentinel, kindOf[sentinel], format, args...)
}

// Kind returns the refusal kind of err ("" when err is not a refusal).
func Kind(err error) string { return refusal.Kind(err) }
