package rfid

import (
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
)

// PN532 commands the decoder sends.
const (
	cmdSAMConfiguration      = 0x14
	cmdRFConfiguration       = 0x32
	cmdInListPassiveTarget   = 0x4A
	maxPNFails               = 3 // failed tries of a command before waking the PN532 again
	maxPNNACKs               = 2 // NACKs sent to have one response repeated
	passiveActivationRetries = 0x05
)

// commandBody returns the frame body (TFI, command, parameters) of cmd.
func commandBody(cmd byte) []byte {
	switch cmd {
	case cmdSAMConfiguration: // normal mode, timeout 20 × 50 ms, no IRQ
		return []byte{tfiHost, cmdSAMConfiguration, 0x01, 0x14, 0x00}
	case cmdRFConfiguration: // MaxRetries: ATR default, PSL 1, passive activation few
		return []byte{tfiHost, cmdRFConfiguration, 0x05, 0xFF, 0x01, passiveActivationRetries}
	}
	// one target at 106 kbps, ISO 14443A
	return []byte{tfiHost, cmdInListPassiveTarget, 0x01, 0x00}
}

// pn532 drives a PN532 over HSU: wake-up and SAMConfiguration (normal
// mode), RFConfiguration (few passive activation retries, so a poll with
// no card in the field is answered at once rather than never), then
// InListPassiveTarget polls. Each command must be answered (ACK, then the
// response) within Config.Timeout or it is resent; after maxPNFails failed
// tries the PN532 is woken and configured again.
type pn532 struct {
	fr       pnFramer
	started  bool
	cmd      byte // command awaiting its response; 0 if none
	acked    bool
	sentAt   time.Time
	fails    int // failed tries of cmd
	nacks    int // NACKs sent for the awaited response
	lastPoll time.Time
}

func (p *pn532) start(d *Decoder, now time.Time, out *stream.Output) {
	if p.fr.reset() {
		d.stats.Count(StatCut)
	}
	p.wake(now, out)
}

// wake sends the wake-up bytes and SAMConfiguration.
func (p *pn532) wake(now time.Time, out *stream.Output) {
	p.started = true
	out.Send = append(out.Send, pnWakeUp...)
	p.send(cmdSAMConfiguration, now, out)
	p.fails = 0
}

// send sends cmd and waits for its answer.
func (p *pn532) send(cmd byte, now time.Time, out *stream.Output) {
	out.Send = appendFrame(out.Send, commandBody(cmd))
	p.cmd, p.acked, p.sentAt, p.nacks = cmd, false, now, 0
	if cmd == cmdInListPassiveTarget {
		p.lastPoll = now
	}
}

// fail counts a failed try of the pending command and tries again.
func (p *pn532) fail(now time.Time, out *stream.Output) {
	p.fails++
	if p.fails >= maxPNFails {
		p.wake(now, out)
		return
	}
	p.send(p.cmd, now, out)
}

func (p *pn532) tick(d *Decoder, now time.Time, out *stream.Output) {
	switch {
	case !p.started:
		p.wake(now, out)
	case p.cmd != 0 && now.Sub(p.sentAt) > d.cfg.Timeout:
		d.stats.Count(StatTimeout)
		p.fail(now, out)
	default:
		p.pollIfDue(d, now, out)
	}
}

func (p *pn532) pollIfDue(d *Decoder, now time.Time, out *stream.Output) {
	if p.started && p.cmd == 0 && now.Sub(p.lastPoll) >= d.cfg.PollInterval {
		p.send(cmdInListPassiveTarget, now, out)
	}
}

func (p *pn532) feed(d *Decoder, chunk []byte, now time.Time, out *stream.Output) {
	for _, b := range chunk {
		switch ev := p.fr.step(b); ev {
		case pnNone:
		case pnACK:
			d.stats.Accepted(now)
			if p.cmd == 0 || p.acked {
				d.stats.Count(StatUnexpected)
			}
			p.acked = true
		case pnNACK:
			d.stats.Count(StatNACK)
			if p.cmd != 0 {
				p.fail(now, out)
			}
		case pnError:
			d.stats.Count(StatErrorFrame)
			if p.cmd != 0 {
				p.fail(now, out)
			}
		case pnInfo:
			d.stats.Accepted(now)
			p.response(d, p.fr.body[:p.fr.ln], now, out)
		case pnDCS:
			d.stats.Count(StatDCS)
			if p.cmd != 0 && p.nacks < maxPNNACKs { // ask for the response again
				p.nacks++
				out.Send = append(out.Send, pnFrameNACK...)
			}
		default:
			d.stats.Count(ev.stat())
		}
	}
	p.pollIfDue(d, now, out)
}

// response handles an information frame from the PN532.
func (p *pn532) response(d *Decoder, body []byte, now time.Time, out *stream.Output) {
	if len(body) < 2 || body[0] != tfiPN532 || p.cmd == 0 || body[1] != p.cmd+1 {
		d.stats.Count(StatUnexpected)
		return
	}
	cmd := p.cmd
	p.cmd, p.fails = 0, 0
	switch cmd {
	case cmdSAMConfiguration:
		p.send(cmdRFConfiguration, now, out)
	case cmdRFConfiguration:
		p.send(cmdInListPassiveTarget, now, out)
	case cmdInListPassiveTarget:
		p.target(d, body[2:], now, out)
	}
}

// target parses the data of an InListPassiveTarget response at 106 kbps
// type A: NbTg, then per target Tg, SENS_RES (2), SEL_RES, NFCIDLength,
// NFCID1 and, for ISO-DEP cards, the ATS (ignored).
func (p *pn532) target(d *Decoder, data []byte, now time.Time, out *stream.Output) {
	if len(data) < 1 || data[0] > 2 {
		d.stats.Count(StatFormat)
		return
	}
	if data[0] == 0 {
		return // no card in the field
	}
	t := data[1:]
	if len(t) < 5 || (t[4] != 4 && t[4] != 7 && t[4] != 10) || len(t) < 5+int(t[4]) {
		d.stats.Count(StatFormat)
		return
	}
	uid := t[5 : 5+int(t[4])]
	var key [20]byte
	var zero byte
	for i, c := range uid {
		key[2*i], key[2*i+1] = hexDigits[c>>4], hexDigits[c&15]
		zero |= c
	}
	if zero == 0 {
		d.stats.Count(StatZeroID)
		return
	}
	v := d.visit(key[:2*len(uid)], now, out)
	if v == nil {
		return
	}
	if v.count == 0 {
		v.tagType = TagISO14443A
		v.extra = []attr{
			{AttrATQA, string([]byte{hexDigits[t[1]>>4], hexDigits[t[1]&15], hexDigits[t[2]>>4], hexDigits[t[2]&15]})},
			{AttrSAK, string([]byte{hexDigits[t[3]>>4], hexDigits[t[3]&15]})},
		}
		if len(uid) == 4 && uid[0] == 0x08 {
			v.extra = append(v.extra, attr{AttrRandomUID, "true"})
		}
	}
	d.hit(v, now, out)
}
