package rfid

import (
	"bytes"
	"slices"
	"testing"
)

// Worked frames of protocols.md §3.4 and responses computed by hand.
const (
	hexSAMConfiguration = "00 00 FF 05 FB D4 14 01 14 00 03 00"
	hexInListPassive    = "00 00 FF 04 FC D4 4A 01 00 E1 00"
	hexACK              = "00 00 FF 00 FF 00"
	hexNACK             = "00 00 FF FF 00 00"
	hexError            = "00 00 FF 01 FF 7F 81 00"
	hexRFConfiguration  = "00 00 FF 06 FA D4 32 05 FF 01 05 F0 00"
	hexSAMResponse      = "00 00 FF 02 FE D5 15 16 00"
	hexRFResponse       = "00 00 FF 02 FE D5 33 F8 00"
	hexNoCard           = "00 00 FF 03 FD D5 4B 00 E0 00"
	// MIFARE Classic 1K, ATQA 0004, SAK 08, UID DE AD BE EF.
	hexCard4 = "00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 DE AD BE EF 96 00"
)

func TestPN532Encode(t *testing.T) {
	cases := []struct {
		name string
		body []byte
		want string
	}{
		{"SAMConfiguration", commandBody(cmdSAMConfiguration), hexSAMConfiguration},
		{"InListPassiveTarget", commandBody(cmdInListPassiveTarget), hexInListPassive},
		{"RFConfiguration", commandBody(cmdRFConfiguration), hexRFConfiguration},
		{"error frame", []byte{0x7F}, hexError},
		{"card response", unhexT(t, "D5 4B 01 01 00 04 08 04 DE AD BE EF"), hexCard4},
	}
	for _, c := range cases {
		if got := appendFrame(nil, c.body); !bytes.Equal(got, unhexT(t, c.want)) {
			t.Errorf("%s: unexpected frame; got % X; want %s", c.name, got, c.want)
		}
	}
	if pnFrameACK != string(unhexT(t, hexACK)) || pnFrameNACK != string(unhexT(t, hexNACK)) {
		t.Error("unexpected ACK or NACK constant")
	}
	// Extended frame: FF FF LENM LENL LCS.
	body := make([]byte, 300)
	body[0] = tfiPN532
	got := appendFrame(nil, body)
	if !bytes.Equal(got[:8], []byte{0, 0, 0xFF, 0xFF, 0xFF, 0x01, 0x2C, 0xD3}) || len(got) != 8+300+2 {
		t.Errorf("unexpected extended frame header % X", got[:8])
	}
}

func TestPN532Decode(t *testing.T) {
	ext := make([]byte, 260)
	ext[0], ext[1], ext[259] = tfiPN532, 0x41, 0x99
	tooLong := appendFrame(nil, make([]byte, 266))
	cases := []struct {
		name   string
		in     []byte
		evs    []pnEvent
		bodies []string
	}{
		{"ACK", unhexT(t, hexACK), []pnEvent{pnACK}, nil},
		{"NACK", unhexT(t, hexNACK), []pnEvent{pnNACK}, nil},
		{"error frame", unhexT(t, hexError), []pnEvent{pnError}, nil},
		{"SAMConfiguration", unhexT(t, hexSAMConfiguration), []pnEvent{pnInfo}, []string{"D4 14 01 14 00"}},
		{"InListPassiveTarget", unhexT(t, hexInListPassive), []pnEvent{pnInfo}, []string{"D4 4A 01 00"}},
		{"ACK then response", unhexT(t, hexACK+hexCard4), []pnEvent{pnACK, pnInfo},
			[]string{"D5 4B 01 01 00 04 08 04 DE AD BE EF"}},
		{"no preamble", unhexT(t, "00 FF 02 FE D5 15 16"), []pnEvent{pnInfo}, []string{"D5 15"}},
		{"long preamble and postamble", unhexT(t, "00 00 00 00 FF 02 FE D5 15 16 00 00 00"), []pnEvent{pnInfo}, []string{"D5 15"}},
		{"extended frame", appendFrame(nil, ext), []pnEvent{pnInfo}, []string{bytesHex(ext)}},
		{"extended frame too long", tooLong, []pnEvent{pnOverlong}, nil}, // its zeros read as padding
		{"bad LCS", unhexT(t, "00 00 FF 02 FD D5 15 16 00"+hexACK), []pnEvent{pnLCS, pnGarbage, pnACK}, nil},
		{"bad extended LCS", unhexT(t, "00 00 FF FF FF 00 02 FF D5 15 16 00"+hexACK), []pnEvent{pnLCS, pnGarbage, pnACK}, nil},
		{"bad DCS", unhexT(t, "00 00 FF 02 FE D5 15 17 00"+hexACK), []pnEvent{pnDCS, pnACK}, nil},
		{"zero length", unhexT(t, "00 00 FF 00 00 00 FF 00 FF 00"), []pnEvent{pnFormat, pnACK}, nil},
		{"garbage runs counted once", unhexT(t, "55 55 12 34 00 AB"+hexACK+"12"), []pnEvent{pnGarbage, pnACK, pnGarbage}, nil},
		{"wake-up bytes echoed", unhexT(t, "55 55 00 00 00 00"+hexACK), []pnEvent{pnGarbage, pnACK}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// whole, and split at every position
			for i := 0; i <= len(c.in); i++ {
				var f pnFramer
				var evs []pnEvent
				var bodies []string
				for _, part := range [][]byte{c.in[:i], c.in[i:]} {
					for _, b := range part {
						if ev := f.step(b); ev != pnNone {
							evs = append(evs, ev)
							if ev == pnInfo {
								bodies = append(bodies, bytesHex(f.body[:f.ln]))
							}
						}
					}
				}
				if !slices.Equal(evs, c.evs) || !slices.Equal(bodies, c.bodies) {
					t.Fatalf("split at %d: unexpected events %v %q; want %v %q", i, evs, bodies, c.evs, c.bodies)
				}
			}
		})
	}
}

func bytesHex(b []byte) string {
	const digits = "0123456789ABCDEF"
	var s []byte
	for i, c := range b {
		if i > 0 {
			s = append(s, ' ')
		}
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}
