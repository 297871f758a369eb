package modbus

import (
	"context"
	"encoding/binary"
	"fmt"
)

// Client talks to the units on one bus. A Client is owned by one goroutine:
// the bus scheduler serialises every unit address through it, which is what
// an RS485 line or a single-connection TCP server needs. Every method
// returns an error wrapping one of the Err* kinds, or an *ExceptionError.
type Client interface {
	// ReadRegisters reads count (1…125) registers of table at addr from
	// unit and returns exactly count words.
	ReadRegisters(ctx context.Context, unit uint8, table Table, addr, count uint16) ([]uint16, error)
	// WriteRegister writes one holding register (FC06).
	WriteRegister(ctx context.Context, unit uint8, addr, value uint16) error
	// WriteRegisters writes 1…123 holding registers (FC16).
	WriteRegisters(ctx context.Context, unit uint8, addr uint16, values []uint16) error
	// WriteCoil sets one coil (FC05).
	WriteCoil(ctx context.Context, unit uint8, addr uint16, on bool) error
	// Close releases the port or connection; the next request reopens it.
	Close() error
}

// transport carries one request PDU to a unit and returns its reply PDU.
// Unit 0 is broadcast: nothing comes back and transact returns nil, nil.
type transport interface {
	transact(ctx context.Context, unit byte, pdu []byte) ([]byte, error)
	close() error
}

// client implements Client over any transport.
type client struct {
	t transport
}

var _ Client = (*client)(nil)

func (c *client) ReadRegisters(ctx context.Context, unit uint8, table Table, addr, count uint16) ([]uint16, error) {
	if count < 1 || count > MaxReadRegisters {
		return nil, fmt.Errorf("cannot read %d registers; 1..%d", count, MaxReadRegisters)
	}
	if unit == 0 {
		return nil, fmt.Errorf("cannot read from unit 0 (broadcast)")
	}
	req := readPDU(table, addr, count)
	resp, err := c.t.transact(ctx, unit, req)
	if err != nil {
		return nil, err
	}
	return parseRead(req[0], count, resp)
}

func (c *client) write(ctx context.Context, unit uint8, req []byte) error {
	resp, err := c.t.transact(ctx, unit, req)
	if err != nil || unit == 0 {
		return err
	}
	return parseEcho(req, resp)
}

func (c *client) WriteRegister(ctx context.Context, unit uint8, addr, value uint16) error {
	return c.write(ctx, unit, []byte{fcWriteSingleReg, byte(addr >> 8), byte(addr), byte(value >> 8), byte(value)})
}

func (c *client) WriteRegisters(ctx context.Context, unit uint8, addr uint16, values []uint16) error {
	n := len(values)
	if n < 1 || n > maxWriteRegisters {
		return fmt.Errorf("cannot write %d registers; 1..%d", n, maxWriteRegisters)
	}
	req := []byte{fcWriteMultipleRegs, byte(addr >> 8), byte(addr), byte(n >> 8), byte(n), byte(2 * n)}
	for _, v := range values {
		req = binary.BigEndian.AppendUint16(req, v)
	}
	return c.write(ctx, unit, req)
}

func (c *client) WriteCoil(ctx context.Context, unit uint8, addr uint16, on bool) error {
	v := uint16(0x0000)
	if on {
		v = 0xFF00
	}
	return c.write(ctx, unit, []byte{fcWriteSingleCoil, byte(addr >> 8), byte(addr), byte(v >> 8), byte(v)})
}

func (c *client) Close() error { return c.t.close() }
