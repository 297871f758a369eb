package modbus

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	gridx "github.com/grid-x/modbus"
)

// tcpTransport is Modbus TCP (MBAP framing) through grid-x, which also
// skips late replies to earlier, timed-out requests by transaction id.
type tcpTransport struct {
	h *gridx.TCPClientHandler
}

// NewTCP returns a client for the Modbus TCP server at addr (host:port). It
// does not connect; the first request does. timeout bounds connecting and
// each request.
func NewTCP(addr string, timeout time.Duration) Client {
	h := gridx.NewTCPClientHandler(addr)
	h.Timeout = timeout
	h.IdleTimeout = 0
	return &client{t: &tcpTransport{h: h}}
}

func (t *tcpTransport) transact(ctx context.Context, unit byte, pdu []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.h.SetSlave(unit)
	adu, err := t.h.Encode(&gridx.ProtocolDataUnit{FunctionCode: pdu[0], Data: pdu[1:]})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	resp, err := t.h.Send(adu)
	if err != nil {
		return nil, t.classify(err)
	}
	if err := t.h.Verify(adu, resp); err != nil {
		return nil, t.classify(err)
	}
	p, err := t.h.Decode(resp)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return append([]byte{p.FunctionCode}, p.Data...), nil
}

func (t *tcpTransport) classify(err error) error {
	msg := err.Error()
	switch {
	case isTimeout(err):
		_ = t.h.Close() // a late reply must not be read as the next one's
		return fmt.Errorf("%w within %v: %v", ErrTimeout, t.h.Timeout, err)
	case strings.Contains(msg, "unit id"):
		return fmt.Errorf("%w: %v", ErrWrongUnit, err)
	case strings.Contains(msg, "transaction id"), strings.Contains(msg, "protocol id"), strings.Contains(msg, "length"):
		_ = t.h.Close()
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		_ = t.h.Close()
		return fmt.Errorf("%w: the server closed the connection", ErrConnection)
	}
	_ = t.h.Close()
	return fmt.Errorf("%w: %v", ErrConnection, err)
}

func (t *tcpTransport) close() error { return t.h.Close() }
