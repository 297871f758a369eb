package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/rfid"
	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

var rfidT0 = time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)

// rfidCollect checks and gathers a decoder's output.
type rfidCollect struct {
	t      *testing.T
	events []telemetry.Event
	send   []byte
}

func (c *rfidCollect) add(out stream.Output) {
	c.t.Helper()
	for _, e := range out.Events {
		if err := e.Validate(); err != nil {
			c.t.Fatalf("invalid event %+v: %v", e, err)
		}
	}
	c.events = append(c.events, out.Events...)
	c.send = append(c.send, out.Send...)
}

// checkRFIDVisit checks that events are exactly the present and gone versions
// of one visit of key with count reads.
func checkRFIDVisit(t *testing.T, events []telemetry.Event, key, tagType string, count int) {
	t.Helper()
	if len(events) != 2 {
		t.Fatalf("unexpected events; got %d; want 2: %+v", len(events), events)
	}
	p, g := events[0], events[1]
	if p.Key != key || g.Key != key || !p.Time.Equal(g.Time) || p.Attrs[rfid.AttrTagType] != tagType ||
		p.Attrs[rfid.AttrState] != rfid.StatePresent || g.Attrs[rfid.AttrState] != rfid.StateGone {
		t.Fatalf("unexpected events %+v", events)
	}
	if got := int(g.Values[rfid.ValueCount]); got != count {
		t.Errorf("unexpected count; got %d; want %d", got, count)
	}
}

// runRFIDReader holds tag at reader r from 1 s to 11 s, reading every 50 ms
// and ticking every second until 15 s.
func runRFIDReader(t *testing.T, r *TagReader, d *rfid.Decoder, tag string) []telemetry.Event {
	c := &rfidCollect{t: t}
	for ms := 0; ms <= 15000; ms += 50 {
		now := rfidT0.Add(time.Duration(ms) * time.Millisecond)
		switch ms {
		case 1000:
			r.Present(tag, now)
		case 11000:
			r.Remove()
		}
		c.add(d.Feed(r.Read(now), now))
		if ms%1000 == 0 {
			c.add(d.Tick(now))
		}
	}
	if len(c.send) != 0 {
		t.Fatalf("a passive decoder sent % X", c.send)
	}
	return c.events
}

func TestEM4100Reader(t *testing.T) {
	cases := []struct {
		name   string
		id12   bool
		faults RFIDFaults
	}{
		{name: "rdm6300 clean"},
		{name: "rdm6300 faulty", faults: RFIDFaults{Corrupt: 0.1, Garbage: 0.1, Cut: 0.1}},
		{name: "id-12la clean", id12: true},
		{name: "id-12la faulty", id12: true, faults: RFIDFaults{Corrupt: 0.1, Garbage: 0.2, Cut: 0.1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, proto := NewEM4100Reader(7), rfid.EM4100RDM6300
			if c.id12 {
				r, proto = NewID12LAReader(7), rfid.EM4100ID12LA
			}
			r.Faults = c.faults
			d := rfid.New(rfid.Config{Protocol: proto}, "gate-1", nil)
			evs := runRFIDReader(t, r, d, "14008EC793")
			checkRFIDVisit(t, evs, "14008EC793", rfid.TagEM4100, r.Counts.Good)
			st := d.Stats()
			if r.Counts.Frames != 100 || st.Frames != uint64(r.Counts.Good) || st.Errors[rfid.StatChecksum] != uint64(r.Counts.Corrupt) {
				t.Errorf("unexpected stats %+v for %+v", st, r.Counts)
			}
			if faults := r.Counts.Garbage + r.Counts.Cut; (faults == 0) != (len(st.Errors) == 0) {
				t.Errorf("unexpected errors %v for %+v", st.Errors, r.Counts)
			}
		})
	}
}

func TestFDXBReader(t *testing.T) {
	cases := []struct {
		name    string
		format  FDXBFormat
		stx     bool
		tag     string
		tagType string
		faults  RFIDFaults
	}{
		{name: "allflex", format: FDXBAllflex, tag: "982000001088420", tagType: rfid.TagFDXB},
		{name: "tiris", format: FDXBTIRIS, tag: "982000001088420", tagType: rfid.TagFDXB},
		{name: "15 digits", format: FDXB15Digits, tag: "999123456789012", tagType: rfid.TagFDXB},
		{name: "dot-hex", format: FDXBDotHex, tag: "999123456789012", tagType: rfid.TagFDXB},
		{name: "industrial hdx", format: FDXBIndustrial, tag: "00060000000018514348", tagType: rfid.TagHDX},
		{name: "allflex with STX, faulty", format: FDXBAllflex, stx: true, tag: "250000123456789", tagType: rfid.TagFDXB,
			faults: RFIDFaults{Corrupt: 0.1, Garbage: 0.1, Cut: 0.1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewFDXBReader(3, c.format, c.stx)
			r.Faults = c.faults
			d := rfid.New(rfid.Config{Protocol: rfid.FDXBText}, "crush-1", nil)
			evs := runRFIDReader(t, r, d, c.tag)
			checkRFIDVisit(t, evs, c.tag, c.tagType, r.Counts.Good)
			st := d.Stats()
			// With STX, a cut line spoils only itself. (It is counted as
			// garbage when noise runs into it.)
			cut, garbage := st.Errors[rfid.StatCut], st.Errors[rfid.StatGarbage]
			if st.Frames != uint64(r.Counts.Good) || st.Errors[rfid.StatFormat] != uint64(r.Counts.Corrupt) ||
				cut > uint64(r.Counts.Cut) || garbage > uint64(r.Counts.Garbage) || (r.Counts.Cut > 0) != (cut > 0) {
				t.Errorf("unexpected stats %+v for %+v", st, r.Counts)
			}
		})
	}
}

func TestFDXBReaderCutWithoutSTX(t *testing.T) {
	// Without STX a cut line runs into the next one: both are lost.
	r := NewFDXBReader(5, FDXBAllflex, false)
	r.Faults.Cut = 0.2
	d := rfid.New(rfid.Config{Protocol: rfid.FDXBText}, "crush-1", nil)
	evs := runRFIDReader(t, r, d, "982000001088420")
	checkRFIDVisit(t, evs, "982000001088420", rfid.TagFDXB, int(d.Stats().Frames))
	if st := d.Stats(); r.Counts.Cut == 0 || st.Frames > uint64(r.Counts.Good) || st.Errors[rfid.StatFormat] == 0 {
		t.Errorf("unexpected stats %+v for %+v", st, r.Counts)
	}
}

func TestWiegand26Line(t *testing.T) {
	if got := Wiegand26Line(90, 324); got != "00101101000000001010001000" {
		t.Fatalf("unexpected line %s", got)
	}
	d := rfid.New(rfid.Config{Protocol: rfid.Wiegand26Text}, "door-1", nil)
	for _, c := range []struct {
		fc   uint8
		cn   uint16
		want string
	}{{90, 324, "90:324"}, {1, 1, "1:1"}, {255, 65535, "255:65535"}, {128, 32768, "128:32768"}} {
		out := d.Feed([]byte(Wiegand26Line(c.fc, c.cn)+"\r\n"), rfidT0)
		if len(out.Events) != 1 || out.Events[0].Key != c.want {
			t.Errorf("unexpected events %+v; want key %s", out.Events, c.want)
		}
	}
}

// runPN532 runs decoder d against PN532 p for end, one exchange every
// 20 ms and a Tick every second; card is in the field from in to out.
func runPN532(t *testing.T, p *PN532, d *rfid.Decoder, card *NFCCard, in, out, end time.Duration) *rfidCollect {
	c := &rfidCollect{t: t}
	o := d.Start(rfidT0)
	c.add(o)
	host := o.Send
	for at := time.Duration(0); at <= end; at += 20 * time.Millisecond {
		now := rfidT0.Add(at)
		switch at {
		case in:
			p.Card = card
		case out:
			p.Card = nil
		}
		o := d.Feed(p.Write(host), now)
		c.add(o)
		host = o.Send
		if at%time.Second == 0 {
			o := d.Tick(now)
			c.add(o)
			host = append(host, o.Send...)
		}
	}
	return c
}

func TestPN532Responder(t *testing.T) {
	mifare := &NFCCard{UID: []byte{0xDE, 0xAD, 0xBE, 0xEF}, ATQA: [2]byte{0x00, 0x04}, SAK: 0x08}
	ntag := &NFCCard{UID: []byte{0x04, 0xA2, 0xB3, 0xC4, 0xD5, 0xE6, 0x80}, ATQA: [2]byte{0x00, 0x44}, SAK: 0x00}
	desfire := &NFCCard{UID: []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}, ATQA: [2]byte{0x03, 0x44}, SAK: 0x20,
		ATS: []byte{0x06, 0x75, 0x77, 0x81, 0x02, 0x80}}
	cases := []struct {
		name   string
		card   *NFCCard
		key    string
		asleep bool
		faults PN532Faults
	}{
		{name: "mifare classic", card: mifare, key: "DEADBEEF"},
		{name: "ntag, asleep at start", card: ntag, key: "04A2B3C4D5E680", asleep: true},
		{name: "desfire with ATS", card: desfire, key: "04112233445566"},
		{name: "faulty PN532", card: mifare, key: "DEADBEEF",
			faults: PN532Faults{NACK: 0.03, Error: 0.03, BadDCS: 0.03}},
		{name: "silent PN532", card: mifare, key: "DEADBEEF", faults: PN532Faults{Silent: 0.003}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewPN532(11)
			p.Asleep, p.Faults = c.asleep, c.faults
			d := rfid.New(rfid.Config{Protocol: rfid.PN532}, "desk-1", nil)
			got := runPN532(t, p, d, c.card, time.Second, 6*time.Second, 10*time.Second)
			if len(got.events) != 2 {
				t.Fatalf("unexpected events %+v (stats %+v, counts %+v)", got.events, d.Stats(), p.Counts)
			}
			checkRFIDVisit(t, got.events, c.key, rfid.TagISO14443A, int(got.events[1].Values[rfid.ValueCount]))
			// A silent PN532 leaves the decoder blind until the next Tick
			// past the timeout; otherwise the card is polled all along.
			n, dur := got.events[1].Values[rfid.ValueCount], got.events[1].Values[rfid.ValueDuration]
			if p.Counts.Silent == 0 && (n < 200 || dur < 4.9 || dur > 5) {
				t.Errorf("unexpected count %g and duration %g", n, dur)
			}
			st := d.Stats()
			e := st.Errors
			if e[rfid.StatNACK] != uint64(p.Counts.NACK) || e[rfid.StatErrorFrame] != uint64(p.Counts.Error) ||
				e[rfid.StatDCS] != uint64(p.Counts.BadDCS) || e[rfid.StatTimeout] != uint64(p.Counts.Silent) ||
				p.Counts.Repeats != p.Counts.BadDCS || p.Counts.BadFrames != 0 {
				t.Errorf("unexpected stats %+v for %+v", st, p.Counts)
			}
			if c.faults.Silent > 0 && p.Counts.Silent == 0 {
				t.Error("no silence was injected")
			}
			if c.faults == (PN532Faults{}) && len(e) != 0 {
				t.Errorf("unexpected errors %v", e)
			}
		})
	}
}

func TestPN532NoCard(t *testing.T) {
	p := NewPN532(1)
	d := rfid.New(rfid.Config{Protocol: rfid.PN532}, "desk-1", nil)
	got := runPN532(t, p, d, nil, -1, -1, 3*time.Second)
	if len(got.events) != 0 || len(d.Stats().Errors) != 0 || p.Counts.Commands < 100 {
		t.Errorf("unexpected run: %+v, %+v, %+v", got.events, d.Stats(), p.Counts)
	}
}

// TestVisits: tags take turns, each read for its stay and then gone.
func TestVisits(t *testing.T) {
	v := &Visits{Tags: []string{"982000000000001", "982000000000002"}, Stay: 2 * time.Second, Gap: 3 * time.Second, Seed: 1}
	r := NewFDXBReader(1, FDXBAllflex, false)
	start := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	lines := map[string]int{}
	for now := start; now.Before(start.Add(40 * time.Second)); now = now.Add(730 * time.Millisecond) { // coarser than the reads
		for _, l := range strings.Split(string(v.Step(r, now)), "\r\n") {
			if l != "" {
				lines[l]++
			}
		}
	}
	// 40 s hold at least three visits of 2 s at 10 reads per second.
	a, b := lines["LA 982 000000000001"], lines["LA 982 000000000002"]
	if len(lines) != 2 || a < 20 || b < 20 || (a+b)%20 != 0 {
		t.Fatalf("reads %v; want both tags, 20 reads per visit", lines)
	}
}
