package modbus

import (
	"encoding/binary"
	"fmt"
)

// Function codes.
const (
	fcReadCoils         = 0x01
	fcReadDiscrete      = 0x02
	fcReadHolding       = 0x03
	fcReadInput         = 0x04
	fcWriteSingleCoil   = 0x05
	fcWriteSingleReg    = 0x06
	fcWriteMultipleRegs = 0x10
	maxWriteRegisters   = 123
	exceptionBit        = 0x80
)

func readPDU(table Table, addr, count uint16) []byte {
	return []byte{table.FunctionCode(), byte(addr >> 8), byte(addr), byte(count >> 8), byte(count)}
}

// checkFunction turns an exception or a reply to another function into an
// error.
func checkFunction(fc byte, resp []byte) error {
	if len(resp) == 0 {
		return fmt.Errorf("%w: empty PDU", ErrMalformed)
	}
	switch resp[0] {
	case fc:
		return nil
	case fc | exceptionBit:
		if len(resp) != 2 {
			return fmt.Errorf("%w: exception reply of %d bytes", ErrMalformed, len(resp))
		}
		return &ExceptionError{Function: resp[0], Code: resp[1]}
	}
	return fmt.Errorf("%w: function %d answered with %d", ErrWrongFunction, fc, resp[0])
}

// parseRead decodes the reply to a read of count registers.
func parseRead(fc byte, count uint16, resp []byte) ([]uint16, error) {
	if err := checkFunction(fc, resp); err != nil {
		return nil, err
	}
	if len(resp) < 2 {
		return nil, fmt.Errorf("%w: a %d-byte reply has no byte count", ErrMalformed, len(resp))
	}
	if int(resp[1]) != len(resp)-2 {
		return nil, fmt.Errorf("%w: byte count %d in a %d-byte reply", ErrMalformed, resp[1], len(resp))
	}
	if int(resp[1]) != 2*int(count) {
		return nil, fmt.Errorf("%w: %d bytes for %d registers", ErrMalformed, resp[1], count)
	}
	words := make([]uint16, count)
	for i := range words {
		words[i] = binary.BigEndian.Uint16(resp[2+2*i:])
	}
	return words, nil
}

// parseEcho checks that a write reply echoes the request's first five bytes.
func parseEcho(req, resp []byte) error {
	if err := checkFunction(req[0], resp); err != nil {
		return err
	}
	if len(resp) != 5 || string(resp[:5]) != string(req[:5]) {
		return fmt.Errorf("%w: write reply % x does not echo % x", ErrMalformed, resp, req[:5])
	}
	return nil
}

// expectedLen is the length of a complete RTU reply (address, PDU, CRC)
// given its first three bytes, or 0 if it cannot be known yet.
func expectedLen(head []byte) int {
	if len(head) < 2 {
		return 0
	}
	fc := head[1]
	if fc&exceptionBit != 0 {
		return 5
	}
	switch fc {
	case fcReadCoils, fcReadDiscrete, fcReadHolding, fcReadInput:
		if len(head) < 3 {
			return 0
		}
		return 3 + int(head[2]) + 2
	case fcWriteSingleCoil, fcWriteSingleReg, fcWriteMultipleRegs, 0x0F:
		return 8
	}
	return -1 // a function we never send: the frame cannot be delimited
}
