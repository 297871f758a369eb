package rfid

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// The fuzz tests feed a decoder arbitrary input in chunks planned by a
// second input: each plan byte is a chunk length (low 5 bits), whether to
// Tick after it (bit 5) and how far time moves (bits 6–7: 0, 50 ms,
// 700 ms, 3 s). They check that the decoder never panics, that every event
// is valid and that the versions of each event follow present → gone.

func FuzzEM4100(f *testing.F)   { fuzzPassive(f, EM4100RDM6300) }
func FuzzID12LA(f *testing.F)   { fuzzPassive(f, EM4100ID12LA) }
func FuzzFDXBText(f *testing.F) { fuzzPassive(f, FDXBText) }
func FuzzWiegand(f *testing.F)  { fuzzPassive(f, Wiegand26Text) }

func fuzzPassive(f *testing.F, proto Protocol) {
	for p, s := range streams() {
		f.Add(s, []byte{5, 0x25, 0xC3, 0x61, 1, 0xFF})
		if p == proto {
			f.Add(bytes.Repeat(s, 3), []byte{0x3F, 0x7F, 0xBF, 0xFF})
		}
	}
	f.Add([]byte("\x02\x02\x03\r\n\x02"), []byte{})
	f.Fuzz(func(t *testing.T, data, plan []byte) {
		for _, minReads := range []int{1, 3} {
			d := New(Config{Protocol: proto, MinReads: minReads}, testDevice, func() telemetry.ClockQuality { return telemetry.ClockRTC })
			evs := playPlan(t, d, data, plan, true)
			checkVersions(t, evs, minReads)
			st := d.Stats()
			if st.Frames > uint64(len(data)) {
				t.Fatalf("more frames than bytes: %+v", st)
			}
			if minReads == 1 { // every accepted read is in one event
				var reads uint64
				for _, e := range evs {
					if e.Attrs[AttrState] == StateGone {
						reads += uint64(e.Values[ValueCount])
					}
				}
				if reads != st.Frames-st.Errors[StatOverflow] {
					t.Fatalf("events count %d reads; stats %+v", reads, st)
				}
			}
		}
		// Split invariance: chunked at one instant equals whole.
		whole := newTest(proto)
		want := summaries(whole.Feed(data, t0).Events)
		d := newTest(proto)
		got := summaries(playPlan(t, d, data, plan, false))
		if !reflect.DeepEqual(got, want) || !equalStats(d.Stats(), whole.Stats()) {
			t.Fatalf("chunking changed the output\ngot  %q %v\nwant %q %v", got, d.Stats(), want, whole.Stats())
		}
	})
}

func FuzzPN532(f *testing.F) {
	var conv []byte
	for _, h := range []string{hexACK, hexSAMResponse, hexACK, hexRFResponse, hexACK, hexCard4, hexACK, hexNoCard,
		hexNACK, hexError, hexACK, "00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 DE AD BE EF 97 00"} {
		conv = append(conv, unhexT(f, h)...)
	}
	f.Add(conv, []byte{6, 9, 6, 9, 6, 19, 0x66, 0xE6, 0xFF})
	f.Add(appendFrame(nil, make([]byte, 265)), []byte{0x3F, 0x3F})
	f.Fuzz(func(t *testing.T, data, plan []byte) {
		d := New(Config{Protocol: PN532}, testDevice, nil)
		var sent []byte
		out := d.Start(t0)
		sent = append(sent, out.Send...)
		evs := playPlanSend(t, d, data, plan, true, &sent)
		checkVersions(t, evs, 1)
		checkSent(t, sent)
	})
}

// FuzzPN532Frame checks that any body round-trips through the frame
// encoder and decoder, and that arbitrary bytes decode without panic.
func FuzzPN532Frame(f *testing.F) {
	f.Add([]byte{0xD5, 0x4B, 0x00}, []byte{0x00, 0xFF, 0x00})
	f.Fuzz(func(t *testing.T, body, noise []byte) {
		if len(body) == 0 || len(body) > maxPNBody {
			return
		}
		var fr pnFramer
		for _, b := range noise {
			fr.step(b)
		}
		fr.reset()
		var got []byte
		n := 0
		for _, b := range appendFrame(nil, body) {
			switch ev := fr.step(b); ev {
			case pnInfo:
				got = append([]byte(nil), fr.body[:fr.ln]...)
				n++
			case pnError:
				got = []byte{0x7F}
				n++
			case pnNone:
			default:
				t.Fatalf("unexpected event %d", ev)
			}
		}
		if n != 1 || !bytes.Equal(got, body) {
			t.Fatalf("round trip: got % X (%d frames); want % X", got, n, body)
		}
	})
}

func playPlan(t *testing.T, d *Decoder, data, plan []byte, timed bool) []telemetry.Event {
	var sent []byte
	evs := playPlanSend(t, d, data, plan, timed, &sent)
	if len(sent) != 0 {
		t.Fatalf("a passive decoder sent % X", sent)
	}
	return evs
}

// playPlanSend feeds data as plan says (with ticks and moving time when
// timed) and returns the events after a final far Tick.
func playPlanSend(t *testing.T, d *Decoder, data, plan []byte, timed bool, sent *[]byte) []telemetry.Event {
	t.Helper()
	now := t0
	var evs []telemetry.Event
	take := func(out stream.Output) {
		if out.Readings != nil {
			t.Fatalf("unexpected readings %v", out.Readings)
		}
		checkEvents(t, out.Events)
		evs = append(evs, out.Events...)
		*sent = append(*sent, out.Send...)
	}
	for _, p := range plan {
		n := min(int(p&0x1F), len(data))
		take(d.Feed(data[:n], now))
		data = data[n:]
		if !timed {
			continue
		}
		now = now.Add([4]time.Duration{0, 50 * time.Millisecond, 700 * time.Millisecond, 3 * time.Second}[p>>6])
		if p&0x20 != 0 {
			take(d.Tick(now))
		}
	}
	take(d.Feed(data, now))
	if timed {
		take(d.Tick(now.Add(time.Hour)))
	}
	return evs
}

// checkVersions checks that each event identity goes present → gone,
// with counts at least minReads and not decreasing, and that every tag
// seen is gone after the final Tick.
func checkVersions(t *testing.T, evs []telemetry.Event, minReads int) {
	t.Helper()
	type id struct {
		key  string
		time time.Time
	}
	state := map[id]telemetry.Event{}
	for _, e := range evs {
		k := id{e.Key, e.Time}
		prev, seen := state[k]
		switch e.Attrs[AttrState] {
		case StatePresent:
			if seen || e.Values[ValueCount] != float64(minReads) {
				t.Fatalf("unexpected present version %s", summary(e))
			}
		case StateGone:
			if !seen || prev.Attrs[AttrState] != StatePresent || e.Values[ValueCount] < prev.Values[ValueCount] ||
				e.Clock != prev.Clock || e.Attrs[AttrTagType] != prev.Attrs[AttrTagType] {
				t.Fatalf("unexpected gone version %s after %v", summary(e), prev)
			}
		default:
			t.Fatalf("unexpected state in %s", summary(e))
		}
		if e.Kind != telemetry.EventTag || e.Device != testDevice || e.Values[ValueDuration] < 0 {
			t.Fatalf("unexpected event %+v", e)
		}
		state[k] = e
	}
	for _, e := range state {
		if e.Attrs[AttrState] != StateGone {
			t.Fatalf("tag never left: %s", summary(e))
		}
	}
}

// checkSent checks that the PN532 decoder only sent the wake-up, its
// commands and NACKs.
func checkSent(t *testing.T, sent []byte) {
	t.Helper()
	pieces := []string{pnWakeUp, pnFrameNACK}
	for _, c := range []byte{cmdSAMConfiguration, cmdRFConfiguration, cmdInListPassiveTarget} {
		pieces = append(pieces, string(appendFrame(nil, commandBody(c))))
	}
	s := string(sent)
next:
	for s != "" {
		for _, p := range pieces {
			if rest, ok := strings.CutPrefix(s, p); ok {
				s = rest
				continue next
			}
		}
		t.Fatalf("unexpected bytes sent: % X", s)
	}
}
