package rfid

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// pnStep is one call in a PN532 conversation.
type pnStep struct {
	at     time.Duration
	op     string // start, feed, tick
	in     string // hex fed
	send   string // hex expected in Output.Send
	events []string
}

const hexWake = "55 55 00 00 00 00 00 00 00 00 00 00 00 00 00 00"

// response frames of InListPassiveTarget with a card.
func cardFrame(t *testing.T, data string) string {
	return bytesHex(appendFrame(nil, unhexT(t, "D5 4B "+data)))
}

// configured is the conversation up to the first poll.
var configured = []pnStep{
	{op: "start", send: hexWake + hexSAMConfiguration},
	{op: "feed", in: hexACK},
	{op: "feed", in: hexSAMResponse, send: hexRFConfiguration},
	{op: "feed", in: hexACK + hexRFResponse, send: hexInListPassive},
}

func TestPN532Conversation(t *testing.T) {
	card4 := hexACK + hexCard4
	card7 := hexACK + cardFrame(t, "01 01 00 44 00 07 04 A2 B3 C4 D5 E6 80")
	cases := []struct {
		name   string
		cfg    Config
		steps  []pnStep
		errors map[string]uint64
	}{
		{name: "card comes and goes", steps: []pnStep{
			{op: "feed", in: hexACK + hexNoCard, send: hexInListPassive},
			{op: "feed", in: card4, send: hexInListPassive,
				events: []string{"DEADBEEF present atqa=0004 sak=08 tag_type=iso14443a"}},
			{at: 100 * time.Millisecond, op: "feed", in: card4, send: hexInListPassive},
			{at: 400 * time.Millisecond, op: "tick"},
			{at: 1200 * time.Millisecond, op: "feed", in: hexACK + hexNoCard, send: hexInListPassive},
			{at: 4 * time.Second, op: "tick", send: hexInListPassive, // the poll was unanswered
				events: []string{"DEADBEEF gone count=2 duration_s=0.1"}},
		}, errors: errs(StatTimeout, 1)},
		{name: "7-byte UID", steps: []pnStep{
			{op: "feed", in: card7, send: hexInListPassive,
				events: []string{"04A2B3C4D5E680 present atqa=0044 sak=00 tag_type=iso14443a"}},
		}},
		{name: "10-byte UID", steps: []pnStep{
			{op: "feed", in: hexACK + cardFrame(t, "01 01 00 44 00 0A 01 02 03 04 05 06 07 08 09 0A"), send: hexInListPassive,
				events: []string{"0102030405060708090A present atqa=0044 sak=00 tag_type=iso14443a"}},
		}},
		{name: "ISO-DEP card with ATS, random UID", steps: []pnStep{
			{op: "feed", in: hexACK + cardFrame(t, "01 01 03 44 20 04 08 11 22 33 06 75 77 81 02 80"), send: hexInListPassive,
				events: []string{"08112233 present atqa=0344 random_uid=true sak=20 tag_type=iso14443a"}},
		}},
		{name: "bad UID length", steps: []pnStep{
			{op: "feed", in: hexACK + cardFrame(t, "01 01 00 44 00 05 01 02 03 04 05"), send: hexInListPassive},
			{op: "feed", in: hexACK + cardFrame(t, "01 01 00 44 00 07 01 02 03"), send: hexInListPassive},
			{op: "feed", in: hexACK + cardFrame(t, "03"), send: hexInListPassive},
			{op: "feed", in: hexACK + cardFrame(t, "01 01 00 44 00 04 00 00 00 00"), send: hexInListPassive},
		}, errors: errs(StatFormat, 3, StatZeroID, 1)},
		{name: "PN532 NACK: resend", steps: []pnStep{
			{op: "feed", in: hexNACK, send: hexInListPassive},
			{op: "feed", in: card4, send: hexInListPassive, events: []string{"DEADBEEF present atqa=0004 sak=08 tag_type=iso14443a"}},
		}, errors: errs(StatNACK, 1)},
		{name: "error frame: resend", steps: []pnStep{
			{op: "feed", in: hexACK + hexError, send: hexInListPassive},
			{op: "feed", in: hexACK + hexNoCard, send: hexInListPassive},
		}, errors: errs(StatErrorFrame, 1)},
		{name: "bad DCS: ask again with a NACK", steps: []pnStep{
			{op: "feed", in: hexACK + strings.Replace(hexCard4, "96 00", "97 00", 1), send: hexNACK},
			{op: "feed", in: hexCard4, send: hexInListPassive, events: []string{"DEADBEEF present atqa=0004 sak=08 tag_type=iso14443a"}},
		}, errors: errs(StatDCS, 1)},
		{name: "bad LCS: left to the timeout", steps: []pnStep{
			{op: "feed", in: hexACK + strings.Replace(hexCard4, "0C F4", "0C F5", 1)},
			{at: 1500 * time.Millisecond, op: "tick", send: hexInListPassive},
		}, errors: errs(StatLCS, 1, StatGarbage, 1, StatTimeout, 1)},
		{name: "no answer: resend, then wake up again", steps: []pnStep{
			{at: 400 * time.Millisecond, op: "tick"},
			{at: time.Second, op: "tick", send: hexInListPassive},
			{at: 1400 * time.Millisecond, op: "tick"},
			{at: 2 * time.Second, op: "tick", send: hexInListPassive},
			{at: 3 * time.Second, op: "tick", send: hexWake + hexSAMConfiguration},
			{at: 3 * time.Second, op: "feed", in: hexACK + hexSAMResponse, send: hexRFConfiguration},
		}, errors: errs(StatTimeout, 3)},
		{name: "unexpected frames", steps: []pnStep{
			{op: "feed", in: hexACK + hexACK},
			{op: "feed", in: hexRFResponse},
			{op: "feed", in: hexInListPassive}, // our own frame echoed
			{op: "feed", in: hexNoCard, send: hexInListPassive},
			// the next poll goes out after the whole chunk
			{op: "feed", in: hexACK + hexNoCard + hexNoCard, send: hexInListPassive},
		}, errors: errs(StatUnexpected, 4)},
		{name: "start cuts a frame and wakes the PN532", steps: []pnStep{
			{op: "feed", in: "00 00 FF 0C F4 D5 4B"},
			{op: "start", send: hexWake + hexSAMConfiguration},
		}, errors: errs(StatCut, 1)},
		{name: "poll interval", cfg: Config{Protocol: PN532, PollInterval: time.Second, Dedup: 3 * time.Second}, steps: []pnStep{
			{at: 10 * time.Millisecond, op: "feed", in: hexACK + hexNoCard},
			{at: 500 * time.Millisecond, op: "tick"},
			{at: time.Second, op: "tick", send: hexInListPassive},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.cfg.Protocol == "" {
				c.cfg.Protocol = PN532
			}
			d := New(c.cfg, testDevice, func() telemetry.ClockQuality { return telemetry.ClockNTP })
			for i, s := range append(append([]pnStep(nil), configured...), c.steps...) {
				now := t0.Add(s.at)
				var out stream.Output
				switch s.op {
				case "start":
					out = d.Start(now)
				case "feed":
					out = d.Feed(unhexT(t, s.in), now)
				case "tick":
					out = d.Tick(now)
				}
				checkEvents(t, out.Events)
				if got := bytesHex(out.Send); got != bytesHex(unhexT(t, s.send)) {
					t.Fatalf("step %d (%s %s): unexpected send\ngot  %s\nwant %s", i, s.op, s.in, got, bytesHex(unhexT(t, s.send)))
				}
				var evs []string
				for _, e := range out.Events {
					evs = append(evs, shortEvent(e))
				}
				if !reflect.DeepEqual(evs, s.events) {
					t.Fatalf("step %d (%s %s): unexpected events\ngot  %q\nwant %q", i, s.op, s.in, evs, s.events)
				}
			}
			if got := d.Stats().Errors; !reflect.DeepEqual(got, c.errors) {
				t.Errorf("unexpected errors; got %v; want %v", got, c.errors)
			}
		})
	}
}

// shortEvent is "KEY present attrs…" or "KEY gone count=… duration_s=…".
func shortEvent(e telemetry.Event) string {
	s := e.Key + " " + e.Attrs[AttrState]
	if e.Attrs[AttrState] == StateGone {
		return fmt.Sprintf("%s count=%g duration_s=%g", s, e.Values[ValueCount], e.Values[ValueDuration])
	}
	var attrs []string
	for k, v := range e.Attrs {
		if k != AttrState {
			attrs = append(attrs, k+"="+v)
		}
	}
	slices.Sort(attrs)
	return s + " " + strings.Join(attrs, " ")
}
