package modbus

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
)

// ReplayRTU reads count registers of table at addr from unit through the
// gateway's own RTU client, over a line that answers with response: a
// recorded RTU frame (address, PDU, CRC). It fails unless the client sends
// exactly request. Firmware profiles check their test vectors with it.
func ReplayRTU(unit uint8, table Table, addr, count uint16, request, response []byte) ([]uint16, error) {
	l := &replayLink{want: request, answer: response}
	c := &client{t: &rtuTransport{o: RTUOptions{Mode: serialport.Mode{Baud: 9600}, Timeout: time.Second},
		name: "replay", dial: func() (link, error) { return l, nil }}}
	words, err := c.ReadRegisters(context.Background(), unit, table, addr, count)
	if l.err != nil {
		return nil, l.err
	}
	return words, err
}

// replayLink is a line with one recorded reply.
type replayLink struct {
	want, answer []byte
	err          error
	r            []byte
}

func (r *replayLink) write(b []byte) error {
	if r.want != nil && !bytes.Equal(b, r.want) {
		r.err = fmt.Errorf("client sent % X, the vector's request is % X", b, r.want)
	}
	r.r = r.answer
	return nil
}

func (r *replayLink) readFull(b []byte, _ time.Time) (int, error) {
	n := copy(b, r.r)
	r.r = r.r[n:]
	if n < len(b) {
		return n, ErrTimeout
	}
	return n, nil
}

func (r *replayLink) discardInput() {}
func (r *replayLink) close() error  { return nil }
