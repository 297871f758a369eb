package hj212

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Reader cuts communication packets out of a byte stream (a TCP connection
// from a data logger or to a platform).
//
// A frame runs from "##" to the first line feed after it (the data segment
// holds no control characters), at most MaxFrame bytes; it is then checked
// as Unpack does. Bytes before "##" are skipped and reported once per run as
// ErrGarbage. A refused frame is skipped up to its line end — or up to a
// "##" and 4 digits inside it, when a frame was cut short by the next one —
// so the next good frame is still read. Reader never waits for more bytes
// than up to the next line feed, whatever a length field says.
type Reader struct {
	br  *bufio.Reader
	buf []byte
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 2*MaxFrame)}
}

// Next returns the data segment of the next frame, valid until the next
// call. A refusal is an *Error (see Kind) and the Reader goes on with the
// next call; any other error is the underlying reader's (io.EOF at the end
// of the stream, a deadline, …), after which the caller decides.
func (r *Reader) Next() ([]byte, error) {
	skipped := 0
	for {
		p, err := r.br.Peek(2)
		if len(p) == 2 && p[0] == '#' && p[1] == '#' {
			break
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(p) > 0 {
				r.br.Discard(len(p))
				skipped += len(p)
			}
			if skipped > 0 {
				return nil, fail(ErrGarbage, "%d bytes before the end of the stream", skipped)
			}
			return nil, err
		}
		r.br.Discard(1)
		skipped++
	}
	if skipped > 0 {
		return nil, fail(ErrGarbage, "%d bytes before a frame", skipped)
	}
	var line []byte
	for {
		avail := r.br.Buffered()
		p, _ := r.br.Peek(avail)
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line = p[:i+1]
			break
		}
		if avail > MaxFrame {
			r.br.Discard(2)
			return nil, fail(ErrOversize, "no line end within %d bytes", MaxFrame)
		}
		if _, err := r.br.Peek(avail + 1); err != nil {
			if errors.Is(err, io.EOF) {
				r.br.Discard(avail)
				return nil, fail(ErrTruncated, "stream ends %d bytes into a frame", avail)
			}
			return nil, err
		}
	}
	data, err := Unpack(line)
	if err != nil {
		if k := nextStart(line); k > 0 {
			r.br.Discard(k)
			return nil, fail(ErrTruncated, "frame cut by the next one after %d bytes", k)
		}
		r.br.Discard(len(line))
		return nil, err
	}
	r.buf = append(r.buf[:0], data...)
	r.br.Discard(len(line))
	return r.buf, nil
}

// ReadPacket returns the next frame's data segment parsed (DecodePacket).
func (r *Reader) ReadPacket() (Packet, error) {
	data, err := r.Next()
	if err != nil {
		return Packet{}, err
	}
	return DecodePacket(data)
}

// nextStart finds "##" and 4 digits after the start of line.
func nextStart(line []byte) int {
	for i := 1; i+6 <= len(line); i++ {
		if line[i] == '#' && line[i+1] == '#' {
			if _, ok := digits4(line[i+2 : i+6]); ok {
				return i
			}
		}
	}
	return 0
}
