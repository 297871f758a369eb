package modbus

import (
	"bytes"
	"fmt"

	gridx "github.com/grid-x/modbus"
)

// ReplayRTU reads count registers of table at addr from unit through the
// same client code the gateway uses, with a bus that answers response: a
// recorded RTU frame (address, PDU, CRC). It fails unless the client sends
// exactly request. Firmware profiles use it to check their test vectors.
func ReplayRTU(unit uint8, table Table, addr, count uint16, request, response []byte) ([]uint16, error) {
	h := gridx.NewRTUClientHandler("")
	h.SetSlave(unit)
	bus := &replayBus{want: request, answer: response}
	return readRegisters(gridx.NewClient2(h, bus), table, addr, count)
}

type replayBus struct{ want, answer []byte }

func (r *replayBus) Send(adu []byte) ([]byte, error) {
	if !bytes.Equal(adu, r.want) {
		return nil, fmt.Errorf("client sent % X, the vector's request is % X", adu, r.want)
	}
	return r.answer, nil
}
