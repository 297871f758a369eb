package rfid

import "testing"

func TestWiegand26(t *testing.T) {
	const vector = "00101101000000001010001000" // FC 90, CN 324 (protocols.md §3.2)
	flip := func(s string, i int) string {
		b := []byte(s)
		b[i] ^= 1
		return string(b)
	}
	runDecodeCases(t, []decodeCase{
		{name: "reference vector", proto: Wiegand26Text, input: []byte(vector + "\r\n"), keys: []string{"90:324"},
			attrs: map[string]string{AttrTagType: TagWiegand26, AttrFacility: "90", AttrCard: "324"}, frames: 1},
		{name: "STX and spaces", proto: Wiegand26Text, input: []byte("\x02 " + vector + " \r\n"), keys: []string{"90:324"}, frames: 1},
		{name: "max values", proto: Wiegand26Text, input: []byte("01111111111111111111111111\n"), keys: []string{"255:65535"}, frames: 1},
		{name: "even parity bit wrong", proto: Wiegand26Text, input: []byte(flip(vector, 0) + "\n"), errors: errs(StatParity, 1)},
		{name: "odd parity bit wrong", proto: Wiegand26Text, input: []byte(flip(vector, 25) + "\n"), errors: errs(StatParity, 1)},
		{name: "facility bit wrong", proto: Wiegand26Text, input: []byte(flip(vector, 5) + "\n"), errors: errs(StatParity, 1)},
		{name: "card bit wrong", proto: Wiegand26Text, input: []byte(flip(vector, 20) + "\n"), errors: errs(StatParity, 1)},
		{name: "25 bits", proto: Wiegand26Text, input: []byte(vector[1:] + "\n"), errors: errs(StatLength, 1)},
		{name: "27 bits", proto: Wiegand26Text, input: []byte(vector + "0\n"), errors: errs(StatLength, 1)},
		{name: "not binary", proto: Wiegand26Text, input: []byte("0010110100000000101000100x\n"), errors: errs(StatFormat, 1)},
		{name: "zero card", proto: Wiegand26Text, input: []byte("00000000000000000000000001\n"), errors: errs(StatZeroID, 1)},
		{name: "two cards", proto: Wiegand26Text, input: []byte(vector + "\r\n" + "01111111111111111111111111\r\n"),
			keys: []string{"90:324", "255:65535"}, frames: 2},
	})
}
