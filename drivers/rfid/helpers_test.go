package rfid

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// t0 is the start of every test's time line.
var t0 = time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)

const testDevice = "reader-1"

func newTest(p Protocol) *Decoder {
	return New(Config{Protocol: p}, testDevice, func() telemetry.ClockQuality { return telemetry.ClockNTP })
}

// unhexT decodes "02 31 34 …" (spaces optional).
func unhexT(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// em is the RDM6300 frame of 10 hex digits of data, checksum computed.
func em(data string) []byte {
	b, _ := hex.DecodeString(data)
	var x byte
	for _, c := range b {
		x ^= c
	}
	return []byte(fmt.Sprintf("\x02%s%02X\x03", data, x))
}

// summary is an event in a comparable one-line form.
func summary(e telemetry.Event) string {
	var parts []string
	for k, v := range e.Attrs {
		parts = append(parts, k+"="+v)
	}
	for k, v := range e.Values {
		parts = append(parts, fmt.Sprintf("%s=%g", k, v))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%s %s %s %s", e.Key, e.Time.Format("15:04:05.000"), e.Clock, strings.Join(parts, " "))
}

func summaries(evs []telemetry.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, summary(e))
	}
	return out
}

// checkEvents fails unless every event is valid.
func checkEvents(t testing.TB, evs []telemetry.Event) {
	t.Helper()
	for _, e := range evs {
		if err := e.Validate(); err != nil {
			t.Fatalf("invalid event %+v: %v", e, err)
		}
	}
}

// equalStats compares counters, ignoring LastFrame.
func equalStats(a, b stream.Stats) bool {
	return a.Frames == b.Frames && (len(a.Errors) == 0 && len(b.Errors) == 0 || reflect.DeepEqual(a.Errors, b.Errors))
}

// errs is a Stats.Errors literal helper: errs("checksum", 1, "garbage", 2).
func errs(kv ...any) map[string]uint64 {
	if len(kv) == 0 {
		return nil
	}
	m := map[string]uint64{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = uint64(kv[i+1].(int))
	}
	return m
}

// decodeCase is one passive-protocol table row: input fed at once.
type decodeCase struct {
	name   string
	proto  Protocol
	input  []byte
	keys   []string          // keys of the "present" events, in order
	attrs  map[string]string // expected attributes of the first event (subset)
	frames uint64
	errors map[string]uint64
}

func runDecodeCases(t *testing.T, cases []decodeCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newTest(c.proto)
			out := d.Feed(c.input, t0)
			checkEvents(t, out.Events)
			var keys []string
			for _, e := range out.Events {
				if e.Attrs[AttrState] != StatePresent || e.Values[ValueCount] != 1 || !e.Time.Equal(t0) {
					t.Errorf("unexpected event %s", summary(e))
				}
				keys = append(keys, e.Key)
			}
			if !reflect.DeepEqual(keys, c.keys) {
				t.Errorf("unexpected keys; got %q; want %q", keys, c.keys)
			}
			for k, v := range c.attrs {
				if len(out.Events) == 0 || out.Events[0].Attrs[k] != v {
					t.Errorf("unexpected attribute %s; got %v; want %q", k, out.Events, v)
				}
			}
			st := d.Stats()
			if st.Frames != c.frames || !equalStats(st, stream.Stats{Frames: c.frames, Errors: c.errors}) {
				t.Errorf("unexpected stats; got %d %v; want %d %v", st.Frames, st.Errors, c.frames, c.errors)
			}
			if out.Send != nil || out.Readings != nil {
				t.Errorf("unexpected output %+v", out)
			}
		})
	}
}
