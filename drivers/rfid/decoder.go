package rfid

import (
	"maps"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Decoder decodes the stream of one reader into tag events. It implements
// stream.Decoder and, like every stream.Decoder, is used by one goroutine.
type Decoder struct {
	cfg    Config
	device string
	clock  func() telemetry.ClockQuality
	stats  stream.Stats
	p      parser
	tags   map[string]*visit
	out    stream.Output // being built; handed over and cleared by each call
}

var _ stream.Decoder = (*Decoder)(nil)

// parser frames and parses the bytes of one protocol, reporting tag reads
// to the Decoder (visit, hit) and refused input to its stats.
type parser interface {
	// start handles a (re)opened port: it drops a partial frame (counted
	// as StatCut) and may send a wake-up.
	start(d *Decoder, now time.Time, out *stream.Output)
	feed(d *Decoder, chunk []byte, now time.Time, out *stream.Output)
	// tick does what time passing asks of the protocol (PN532 polls).
	tick(d *Decoder, now time.Time, out *stream.Output)
}

// New returns a decoder for cfg, which should have passed Check; it is
// normalized here. device names the reader in events; clock reports the
// quality of the gateway's clock when a tag is first seen (nil: unknown).
func New(cfg Config, device string, clock func() telemetry.ClockQuality) *Decoder {
	cfg.Normalize()
	d := &Decoder{cfg: cfg, device: device, clock: clock, tags: map[string]*visit{}}
	switch cfg.Protocol {
	case EM4100RDM6300:
		d.p = &emFramer{}
	case EM4100ID12LA:
		d.p = &emFramer{crlf: true}
	case FDXBText:
		d.p = &lineFramer{parse: parseFDXB}
	case Wiegand26Text:
		d.p = &lineFramer{parse: parseWiegand}
	case PN532:
		d.p = &pn532{}
	default:
		d.p = refuser{}
	}
	return d
}

// Start implements stream.Decoder.
func (d *Decoder) Start(now time.Time) stream.Output {
	d.p.start(d, now, &d.out)
	return d.take()
}

// Feed implements stream.Decoder.
func (d *Decoder) Feed(chunk []byte, now time.Time) stream.Output {
	d.p.feed(d, chunk, now, &d.out)
	return d.take()
}

// Tick implements stream.Decoder: it ends the visits of tags unread for
// longer than the dedup window and, for the PN532, polls and resends.
func (d *Decoder) Tick(now time.Time) stream.Output {
	d.expire(now, &d.out)
	d.p.tick(d, now, &d.out)
	return d.take()
}

// take hands over the output built, so that the caller owns its slices.
// (Building it in the Decoder rather than on the stack spares an
// allocation per call: a pointer passed through an interface escapes.)
func (d *Decoder) take() stream.Output {
	out := d.out
	d.out = stream.Output{}
	return out
}

// Stats implements stream.Decoder. The result is a copy.
func (d *Decoder) Stats() stream.Stats {
	s := d.stats
	s.Errors = maps.Clone(d.stats.Errors)
	return s
}

// refuser is the parser of a decoder with an unknown protocol.
type refuser struct{}

func (refuser) start(*Decoder, time.Time, *stream.Output) {}
func (refuser) tick(*Decoder, time.Time, *stream.Output)  {}
func (refuser) feed(d *Decoder, chunk []byte, _ time.Time, _ *stream.Output) {
	if len(chunk) > 0 {
		d.stats.Count(StatConfig)
	}
}
