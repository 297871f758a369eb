package sl651

import (
	"bufio"
	"errors"
	"io"
)

// Reader cuts SL 651 frames of either encoding out of a byte stream (a TCP
// connection from telemetry stations).
//
// A frame starts at 7E7E (HEX) or at SOH followed by hex digits (ASCII); its
// length field says where it ends, at most MaxFrame bytes. Bytes before a
// start are skipped and reported once per run as ErrGarbage. A refused frame
// costs only its start character(s): the Reader looks for the next start
// right after them, so a frame hidden behind a corrupt length is still
// found. Unlike HJ 212 there is no line end, so a false start whose length
// field points past the data received waits for that many bytes (at most
// MaxFrame) or for the connection's read deadline.
type Reader struct {
	br  *bufio.Reader
	buf []byte
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader { return &Reader{br: bufio.NewReaderSize(r, 2*MaxFrame)} }

// Next returns the next frame; its Body is valid until the next call. A
// refusal is an *Error (see Kind) and the Reader goes on with the next call;
// any other error is the underlying reader's.
func (r *Reader) Next() (Frame, error) {
	skipped := 0
	var head int
	for {
		p, err := r.br.Peek(2)
		if len(p) >= 1 && p[0] == SOH {
			head = asciiHead
			if len(p) == 2 {
				if _, ok := hexDigit(p[1]); ok {
					break
				}
			}
		}
		if len(p) == 2 && p[0] == 0x7E && p[1] == 0x7E {
			head = hexHead
			break
		}
		if err != nil {
			if len(p) == 1 && (p[0] == 0x7E || p[0] == SOH) && skipped == 0 && errors.Is(err, io.EOF) {
				r.br.Discard(1)
				return Frame{}, fail(ErrTruncated, "stream ends after a start byte")
			}
			if errors.Is(err, io.EOF) && len(p) > 0 {
				r.br.Discard(len(p))
				skipped += len(p)
			}
			if skipped > 0 {
				return Frame{}, fail(ErrGarbage, "%d bytes before the end of the stream", skipped)
			}
			return Frame{}, err
		}
		r.br.Discard(1)
		skipped++
	}
	if skipped > 0 {
		return Frame{}, fail(ErrGarbage, "%d bytes before a frame", skipped)
	}
	startLen := 2
	if head == asciiHead {
		startLen = 1
	}
	h, err := r.br.Peek(head + 1)
	if err != nil {
		return Frame{}, r.cut(err, startLen)
	}
	var n, tail int
	if head == hexHead {
		n = (int(h[11])<<8 | int(h[12])) & 0xFFF
		tail = 2
	} else {
		v, ok := hexDecode([]byte("0" + string(h[20:23])))
		if !ok {
			r.br.Discard(startLen)
			return Frame{}, fail(ErrLength, "length %q is not hex digits", h[20:23])
		}
		n = int(v[0])<<8 | int(v[1])
		tail = 4
	}
	// A SYN frame's length counts its packet numbers too; either way the
	// frame is head, start character, n bytes, end character, CRC.
	total := head + 1 + n + 1 + tail
	p, err := r.br.Peek(total)
	if err != nil {
		return Frame{}, r.cut(err, startLen)
	}
	f, err := Decode(p)
	if err != nil {
		r.br.Discard(startLen)
		return Frame{}, err
	}
	r.buf = append(r.buf[:0], f.Body...)
	f.Body = r.buf
	r.br.Discard(total)
	return f, nil
}

// cut handles a stream that ended (or failed) inside a frame: at the end of
// the stream only the start is dropped, so a frame after a false start is
// still found.
func (r *Reader) cut(err error, startLen int) error {
	if errors.Is(err, io.EOF) {
		r.br.Discard(startLen)
		return fail(ErrTruncated, "stream ends inside a frame")
	}
	return err
}
