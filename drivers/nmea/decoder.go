package nmea

import (
	"maps"
	"slices"
	"time"

	gonmea "github.com/adrianmo/go-nmea"
	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Decoder decodes one instrument's NMEA 0183 stream. It implements
// stream.Decoder and, like every decoder, is used by one goroutine.
type Decoder struct {
	cfg       Config
	device    string
	clock     func() telemetry.ClockQuality
	fr        framer
	parser    gonmea.SentenceParser
	stats     stream.Stats
	sentences map[string]bool // nil: all supported
	metrics   map[string]bool // nil: all
	drift     *Drift

	lat, lon float64
	posAt    time.Time
	posOK    bool
	// fixUTC is the receiver's UTC of the last position reported: GGA and
	// RMC of one fix carry the same one, and the second is not repeated.
	fixUTC gonmea.Time
}

var _ stream.Decoder = (*Decoder)(nil)

// New returns a decoder for device. cfg should have been normalized and
// checked; New normalizes a copy again so that a zero Config works. clock
// reports the quality of the gateway's clock for the readings' Clock; nil
// means telemetry.ClockUnknown.
func New(cfg Config, device string, clock func() telemetry.ClockQuality) *Decoder {
	cfg.Sentences = slices.Clone(cfg.Sentences)
	cfg.XDR = slices.Clone(cfg.XDR) // nil stays nil (defaults), empty stays empty
	cfg.Normalize()
	cfg.MaxLine = min(max(cfg.MaxLine, minMaxLine), maxMaxLine) // unchecked configs
	if clock == nil {
		clock = func() telemetry.ClockQuality { return telemetry.ClockUnknown }
	}
	d := &Decoder{cfg: cfg, device: device, clock: clock, parser: newParser()}
	d.fr = newFramer(cfg.MaxLine, d.stats.Count)
	if len(cfg.Sentences) > 0 {
		d.sentences = map[string]bool{}
		for _, s := range cfg.Sentences {
			d.sentences[s] = true
		}
	}
	if len(cfg.Metrics) > 0 {
		d.metrics = map[string]bool{}
		for _, m := range cfg.Metrics {
			d.metrics[m] = true
		}
	}
	return d
}

// WithMooring makes the decoder watch the buoy's position against its
// mooring: every valid fix (not GGA quality 6, estimated) is passed to a
// Drift, whose events come out of Feed with the fix's readings. m should
// have been normalized and checked. It returns d.
func (d *Decoder) WithMooring(m Mooring) *Decoder {
	d.drift = NewDrift(m)
	return d
}

// Position returns the last valid fix and when it arrived; ok is false
// before the first one.
func (d *Decoder) Position() (lat, lon float64, at time.Time, ok bool) {
	return d.lat, d.lon, d.posAt, d.posOK
}

// Start discards a frame cut by the reopening of the port.
func (d *Decoder) Start(now time.Time) stream.Output {
	d.fr.reset()
	return stream.Output{}
}

// Feed decodes the complete frames in chunk, keeping an unfinished one for
// the next call.
func (d *Decoder) Feed(chunk []byte, now time.Time) stream.Output {
	var out stream.Output
	clk := d.clock()
	for len(chunk) > 0 {
		frame, n := d.fr.next(chunk)
		chunk = chunk[n:]
		if frame != nil {
			d.frame(frame, now, clk, &out)
		}
	}
	return out
}

// Tick does nothing: an NMEA talker speaks unasked.
func (d *Decoder) Tick(now time.Time) stream.Output { return stream.Output{} }

// Stats returns a copy of the counters.
func (d *Decoder) Stats() stream.Stats {
	s := d.stats
	s.Errors = maps.Clone(d.stats.Errors)
	return s
}

// frame decodes one complete frame into out, counting it in the stats.
func (d *Decoder) frame(frame []byte, now time.Time, clk telemetry.ClockQuality, out *stream.Output) {
	frame = trimRight(frame)
	body, kind := checksum(frame, d.cfg.AllowNoChecksum)
	if kind != "" {
		d.stats.Count(kind)
		return
	}
	typ := ""
	if frame[0] == '$' {
		typ = sentenceType(body)
	}
	if typ == "" {
		d.stats.Count(KindUnknownSentence)
		return
	}
	if d.sentences != nil && !d.sentences[typ] {
		d.stats.Count(KindIgnored)
		return
	}
	s, err := d.parser.Parse(string(frame))
	if err != nil {
		d.stats.Count(KindMalformed)
		return
	}
	k := sink{d: d, out: out, now: now, clk: clk, start: len(out.Readings)}
	kind = d.mapSentence(s, &k)
	switch {
	case k.broken:
		out.Readings = out.Readings[:k.start]
		d.stats.Count(KindMalformed)
	case kind != "":
		out.Readings = out.Readings[:k.start]
		d.stats.Count(kind)
	case k.added > 0:
		d.stats.Accepted(now)
	case k.filtered > 0:
		d.stats.Count(KindIgnored)
	default:
		d.stats.Count(KindEmpty)
	}
	// The position is kept, and watched, even when the metrics allow-list
	// drops the latitude and longitude readings.
	if !k.broken && kind == "" && k.fix {
		d.fixUTC = k.fixUTC
		d.setPosition(k.lat, k.lon, k.watch, now, clk, out)
	}
}

// setPosition records a valid fix and, when it may be trusted for the
// mooring watch, passes it to the drift watch.
func (d *Decoder) setPosition(lat, lon float64, watch bool, now time.Time, clk telemetry.ClockQuality, out *stream.Output) {
	d.lat, d.lon, d.posAt, d.posOK = lat, lon, now, true
	if d.drift == nil || !watch {
		return
	}
	if ev, ok := d.drift.Update(lat, lon, now); ok {
		ev.Device = d.device
		ev.Clock = clk
		out.Events = append(out.Events, ev)
	}
}
