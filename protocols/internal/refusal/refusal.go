// Package refusal is the error type the protocol codecs refuse input with:
// a kind to count by, a detail, and the codec's sentinel to match with
// errors.Is.
package refusal

import (
	"errors"
	"fmt"
)

// Error is a refusal: Kind names what was wrong, Msg the detail.
type Error struct {
	Kind string
	Msg  string
	err  error // the sentinel
}

func (e *Error) Error() string { return e.err.Error() + ": " + e.Msg }

// Unwrap returns the sentinel, for errors.Is.
func (e *Error) Unwrap() error { return e.err }

// New returns the refusal of kind, wrapping sentinel.
func New(sentinel error, kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), err: sentinel}
}

// Kind returns the kind of the refusal in err's chain, "" when there is
// none.
func Kind(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}
