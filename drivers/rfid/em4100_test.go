package rfid

import (
	"bytes"
	"testing"
)

func TestEM4100(t *testing.T) {
	worked := []byte("\x0214008EC793CE\x03") // protocols.md §3.1
	id12 := []byte("\x020C000621A58E\r\n\x03")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	runDecodeCases(t, []decodeCase{
		{name: "worked frame", proto: EM4100RDM6300, input: worked, keys: []string{"14008EC793"},
			attrs: map[string]string{AttrTagType: TagEM4100, AttrDecimal: "0009357203"}, frames: 1},
		{name: "worked frame in hex", proto: EM4100RDM6300, input: unhexT(t, "02 31 34 30 30 38 45 43 37 39 33 43 45 03"),
			keys: []string{"14008EC793"}, frames: 1},
		{name: "lower-case hex is upper-cased", proto: EM4100RDM6300, input: []byte("\x0214008ec793ce\x03"),
			keys: []string{"14008EC793"}, frames: 1},
		{name: "helper frame", proto: EM4100RDM6300, input: em("0102030405"), keys: []string{"0102030405"}, frames: 1},
		{name: "bad checksum", proto: EM4100RDM6300, input: []byte("\x0214008EC793CF\x03"), errors: errs(StatChecksum, 1)},
		{name: "not hex", proto: EM4100RDM6300, input: []byte("\x0214008EC7G3CE\x03"), errors: errs(StatFormat, 1)},
		{name: "all zero ignored", proto: EM4100RDM6300, input: []byte("\x02000000000000\x03"), errors: errs(StatZeroID, 1)},
		{name: "short frame", proto: EM4100RDM6300, input: []byte("\x0214008EC793C\x03"), errors: errs(StatLength, 1)},
		{name: "overlong frame", proto: EM4100RDM6300, input: cat([]byte("\x0214008EC793CE00000\x03"), worked),
			keys: []string{"14008EC793"}, frames: 1, errors: errs(StatOverlong, 1)},
		{name: "garbage between frames", proto: EM4100RDM6300,
			input: cat([]byte("\xff\x00junk"), worked, []byte("\r\n\x03\x03"), em("0102030405"), []byte("zz")),
			keys:  []string{"14008EC793", "0102030405"}, frames: 2, errors: errs(StatGarbage, 3)},
		{name: "cut frame resynchronises on STX", proto: EM4100RDM6300, input: cat([]byte("\x0214008E"), worked),
			keys: []string{"14008EC793"}, frames: 1, errors: errs(StatCut, 1)},
		{name: "repeats are one event", proto: EM4100RDM6300, input: cat(worked, worked, worked),
			keys: []string{"14008EC793"}, frames: 3},
		{name: "id-12la worked data", proto: EM4100ID12LA, input: id12, keys: []string{"0C000621A5"},
			attrs: map[string]string{AttrDecimal: "0000401829"}, frames: 1},
		{name: "id-12la without CR LF", proto: EM4100ID12LA, input: worked, errors: errs(StatLength, 1)},
		{name: "id-12la with LF CR", proto: EM4100ID12LA, input: []byte("\x020C000621A58E\n\r\x03"), errors: errs(StatFormat, 1)},
		{name: "id-12la bad checksum", proto: EM4100ID12LA, input: []byte("\x020C000621A58F\r\n\x03"), errors: errs(StatChecksum, 1)},
		{name: "rdm6300 refuses id-12la frames", proto: EM4100RDM6300, input: id12, errors: errs(StatOverlong, 1)},
	})
}
