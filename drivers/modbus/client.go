package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	gridx "github.com/grid-x/modbus"
)

// Client reads the units on one bus. A Client is owned by one goroutine: the
// bus scheduler serialises all unit addresses through it, which is what an
// RS485 line or a single-connection TCP server needs.
type Client interface {
	// ReadRegisters reads count registers of table starting at addr from
	// unit. It returns exactly count words or an error; an *ExceptionError
	// when the unit answered with a Modbus exception.
	ReadRegisters(ctx context.Context, unit uint8, table Table, addr, count uint16) ([]uint16, error)
	// Close releases the connection; the next read reconnects.
	Close() error
}

// ExceptionError is a Modbus exception reply.
type ExceptionError struct {
	Function, Code byte
}

func (e *ExceptionError) Error() string {
	names := map[byte]string{1: "illegal function", 2: "illegal data address", 3: "illegal data value",
		4: "server device failure", 5: "acknowledge", 6: "server device busy", 8: "memory parity error",
		10: "gateway path unavailable", 11: "gateway target failed to respond"}
	name, ok := names[e.Code]
	if !ok {
		name = "unknown exception"
	}
	return fmt.Sprintf("exception %d (%s) to function %d", e.Code, name, e.Function&0x7f)
}

// TCPClient is a Client for a Modbus TCP server (MBAP framing).
type TCPClient struct {
	handler *gridx.TCPClientHandler
	client  gridx.Client
}

var _ Client = (*TCPClient)(nil)

// NewTCP returns a client for the Modbus TCP server at addr (host:port). It
// does not connect; the first read does. timeout bounds connecting and each
// request.
func NewTCP(addr string, timeout time.Duration) *TCPClient {
	h := gridx.NewTCPClientHandler(addr)
	h.Timeout = timeout
	h.IdleTimeout = 0
	return &TCPClient{handler: h, client: gridx.NewClient(h)}
}

// ReadRegisters implements Client.
func (c *TCPClient) ReadRegisters(ctx context.Context, unit uint8, table Table, addr, count uint16) ([]uint16, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.handler.SetSlave(unit)
	return readRegisters(c.client, table, addr, count)
}

// Close implements Client.
func (c *TCPClient) Close() error { return c.handler.Close() }

func readRegisters(c gridx.Client, table Table, addr, count uint16) ([]uint16, error) {
	var b []byte
	var err error
	if table == Input {
		b, err = c.ReadInputRegisters(addr, count)
	} else {
		b, err = c.ReadHoldingRegisters(addr, count)
	}
	if err != nil {
		var me *gridx.Error
		if errors.As(err, &me) {
			return nil, &ExceptionError{Function: me.FunctionCode, Code: me.ExceptionCode}
		}
		return nil, err
	}
	if len(b) != 2*int(count) {
		return nil, fmt.Errorf("response holds %d bytes for %d registers", len(b), count)
	}
	words := make([]uint16, count)
	for i := range words {
		words[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return words, nil
}
