package sim

import (
	"math/rand/v2"
)

// NFCCard is an ISO 14443A card in a simulated PN532's field.
type NFCCard struct {
	UID  []byte  // 4, 7 or 10 bytes
	ATQA [2]byte // SENS_RES as the PN532 reports it, e.g. 00 04
	SAK  byte    // SEL_RES, e.g. 08
	ATS  []byte  // for ISO-DEP cards: the ATS, its length byte first
}

// PN532Faults are the faults a simulated PN532 injects: each is the chance
// (0 to 1) that it answers one command that way.
type PN532Faults struct {
	NACK   float64 // a NACK instead of the ACK (asking the host to resend)
	Error  float64 // the ACK, then the syntax-error frame
	BadDCS float64 // the ACK, then the response with a wrong DCS
	Silent float64 // no answer at all
}

// PN532Counts counts what a simulated PN532 did.
type PN532Counts struct {
	Commands   int // well-formed commands received
	Responses  int // correct responses sent, repeats included
	NACK       int
	Error      int
	BadDCS     int
	Silent     int
	Repeats    int // responses sent again at a host NACK
	Aborts     int // host ACKs (abort)
	BadFrames  int // host frames with a wrong LCS or DCS, ignored
	Unanswered int // bytes received while asleep, ignored
}

// PN532 answers like an NXP PN532 on its UART (HSU). Write takes the bytes
// the host wrote and returns what the PN532 answers: an ACK, then the
// response of SAMConfiguration, RFConfiguration, InListPassiveTarget
// (106 kbps type A: Card, or no target) or GetFirmwareVersion, and the
// error frame for any other command. A host NACK has the last response
// sent again; a host ACK aborts. Frames are written here by hand,
// independently of drivers/rfid.
type PN532 struct {
	Card   *NFCCard // the card in the field; nil for none
	Faults PN532Faults
	Counts PN532Counts
	// Asleep is a PN532 in power-down: it ignores everything until the
	// wake-up (55 55) and wakes into normal operation.
	Asleep bool

	rng  *rand.Rand
	in   []byte // host bytes not yet parsed
	last []byte // last response frame
}

// NewPN532 returns an awake PN532 with no card, whose faults come from a
// source seeded with seed.
func NewPN532(seed uint64) *PN532 { return &PN532{rng: rfidRNG(seed)} }

// Write consumes host bytes and returns the PN532's answer.
func (p *PN532) Write(host []byte) []byte {
	p.in = append(p.in, host...)
	if p.Asleep {
		i := pn532Index(p.in, 0x55, 0x55)
		if i < 0 {
			p.Counts.Unanswered += len(p.in)
			p.in = p.in[:0]
			return nil
		}
		p.Asleep, p.in = false, p.in[i+2:]
	}
	var out []byte
	for {
		i := pn532Index(p.in, 0x00, 0xFF)
		if i < 0 || len(p.in) < i+4 {
			if i < 0 && len(p.in) > 0 && p.in[len(p.in)-1] == 0x00 {
				p.in = p.in[len(p.in)-1:] // may start 00 FF
			} else if i < 0 {
				p.in = p.in[:0]
			}
			return out
		}
		f := p.in[i+2:]
		ln, lcs := f[0], f[1]
		switch {
		case ln == 0x00 && lcs == 0xFF: // ACK: abort
			p.Counts.Aborts++
			p.in = f[2:]
			continue
		case ln == 0xFF && lcs == 0x00: // NACK: repeat
			p.in = f[2:]
			if p.last != nil {
				p.Counts.Repeats++
				out = append(out, p.last...)
			}
			continue
		case ln+lcs != 0 || ln == 0:
			p.Counts.BadFrames++
			p.in = f[1:]
			continue
		}
		if len(f) < 2+int(ln)+1 {
			return out // wait for the rest
		}
		body, dcs := f[2:2+int(ln)], f[2+int(ln)]
		p.in = f[3+int(ln):]
		var sum byte
		for _, c := range body {
			sum += c
		}
		if sum+dcs != 0 || body[0] != 0xD4 || len(body) < 2 {
			p.Counts.BadFrames++
			continue
		}
		p.Counts.Commands++
		out = append(out, p.answer(body[1], body[2:])...)
	}
}

// answer is the ACK and response to command cmd with parameters, with
// faults injected.
func (p *PN532) answer(cmd byte, params []byte) []byte {
	const ack = "\x00\x00\xFF\x00\xFF\x00"
	x := p.rng.Float64()
	f := p.Faults
	switch {
	case x < f.Silent:
		p.Counts.Silent++
		return nil
	case x < f.Silent+f.NACK:
		p.Counts.NACK++
		return []byte("\x00\x00\xFF\xFF\x00\x00")
	case x < f.Silent+f.NACK+f.Error:
		p.Counts.Error++
		return []byte(ack + "\x00\x00\xFF\x01\xFF\x7F\x81\x00")
	}
	resp := p.response(cmd, params)
	p.last = pn532Frame(resp)
	if x < f.Silent+f.NACK+f.Error+f.BadDCS {
		p.Counts.BadDCS++
		bad := append([]byte(nil), p.last...)
		bad[len(bad)-2]++
		return append([]byte(ack), bad...)
	}
	p.Counts.Responses++
	return append([]byte(ack), p.last...)
}

// response is the body (D5, command+1, data) answering cmd.
func (p *PN532) response(cmd byte, params []byte) []byte {
	r := []byte{0xD5, cmd + 1}
	switch cmd {
	case 0x02: // GetFirmwareVersion: PN532 v1.6
		return append(r, 0x32, 0x01, 0x06, 0x07)
	case 0x14, 0x32: // SAMConfiguration, RFConfiguration
		return r
	case 0x4A: // InListPassiveTarget
		if len(params) < 2 || params[1] != 0x00 || p.Card == nil {
			return append(r, 0x00)
		}
		c := p.Card
		r = append(r, 0x01, 0x01, c.ATQA[0], c.ATQA[1], c.SAK, byte(len(c.UID)))
		r = append(r, c.UID...)
		return append(r, c.ATS...)
	}
	return []byte{0x7F} // the error frame's body
}

// pn532Frame is the normal information frame around body.
func pn532Frame(body []byte) []byte {
	f := []byte{0x00, 0x00, 0xFF, byte(len(body)), byte(0x100 - len(body))}
	var sum byte
	for _, c := range body {
		sum += c
	}
	f = append(f, body...)
	return append(f, 0-sum, 0x00)
}

// pn532Index is the index of the first a, b in s, or -1.
func pn532Index(s []byte, a, b byte) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == a && s[i+1] == b {
			return i
		}
	}
	return -1
}
