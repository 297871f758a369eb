package modbus

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// Failures of a request, as the bus statistics count them. Errors returned
// by a Client wrap one of these (or are an *ExceptionError).
var (
	// ErrTimeout: no reply at all within the timeout (a dead or absent unit,
	// a wrong baud rate, a broken wire).
	ErrTimeout = errors.New("no reply")
	// ErrShortFrame: a reply began but stopped before it was complete.
	ErrShortFrame = errors.New("reply cut short")
	// ErrCRC: the reply's checksum is wrong (noise, a bad termination, two
	// units answering at once).
	ErrCRC = errors.New("CRC mismatch")
	// ErrWrongUnit: the reply came from another unit address.
	ErrWrongUnit = errors.New("reply from another unit")
	// ErrWrongFunction: the reply answers another function.
	ErrWrongFunction = errors.New("reply to another function")
	// ErrMalformed: the reply is complete and checksummed but inconsistent
	// (a byte count that does not match the request, a wrong echo).
	ErrMalformed = errors.New("malformed reply")
	// ErrConnection: the port or connection failed; it is reopened on the
	// next request.
	ErrConnection = errors.New("connection failed")
)

// ExceptionError is a Modbus exception reply: the unit is alive but refused.
type ExceptionError struct {
	Function, Code byte
}

func (e *ExceptionError) Error() string {
	return fmt.Sprintf("exception %d (%s) to function %d", e.Code, ExceptionName(e.Code), e.Function&0x7f)
}

// ExceptionName is the standard meaning of an exception code.
func ExceptionName(code byte) string {
	names := map[byte]string{1: "illegal function", 2: "illegal data address", 3: "illegal data value",
		4: "server device failure", 5: "acknowledge", 6: "server device busy", 8: "memory parity error",
		10: "gateway path unavailable", 11: "gateway target failed to respond"}
	if n, ok := names[code]; ok {
		return n
	}
	return "unknown exception"
}

// Kind classifies err for counters: timeout, short_frame, crc, wrong_unit,
// wrong_function, malformed, exception, connection, or other.
func Kind(err error) string {
	var ex *ExceptionError
	switch {
	case errors.As(err, &ex):
		return "exception"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrShortFrame):
		return "short_frame"
	case errors.Is(err, ErrCRC):
		return "crc"
	case errors.Is(err, ErrWrongUnit):
		return "wrong_unit"
	case errors.Is(err, ErrWrongFunction):
		return "wrong_function"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrConnection):
		return "connection"
	}
	return "other"
}

// Kinds lists every Kind, for pre-creating counters.
var Kinds = []string{"timeout", "short_frame", "crc", "wrong_unit", "wrong_function", "malformed", "exception",
	"connection", "other"}

// Retryable reports whether sending the same request again may succeed: not
// for an exception (the unit answered, and would answer the same).
func Retryable(err error) bool {
	var ex *ExceptionError
	return err != nil && !errors.As(err, &ex)
}

// Alive reports whether err still proves the unit is there (it answered,
// if wrongly): only timeouts and connection failures say it is not.
func Alive(err error) bool {
	return err == nil || !(errors.Is(err, ErrTimeout) || errors.Is(err, ErrConnection))
}

// isTimeout reports an I/O deadline.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
