package telemetry

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func exampleEvents() []Event {
	t0 := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	return []Event{
		{Device: "gate-reader", Kind: EventTag, Key: "982000123456789", Time: t0, Clock: ClockNTP,
			Attrs: map[string]string{"tag_type": "fdx-b", "state": "gone"}, Values: map[string]float64{"count": 97, "duration_s": 9.6}},
		{Device: "buoy-1", Kind: EventDrift, Time: t0.Add(time.Minute), Clock: ClockGPS,
			Attrs: map[string]string{"state": "drifting"}, Values: map[string]float64{"lat": 36.05, "lon": 120.4, "distance_m": 812, "radius_m": 500}},
	}
}

func TestEventsRoundTrip(t *testing.T) {
	for _, c := range []Codec{CodecRows, CodecRowsDeflate, CodecItems, CodecItemsDeflate} {
		for _, withReadings := range []bool{true, false} {
			b := exampleBatch()
			if !withReadings {
				b.Readings = nil
			}
			b.Events = exampleEvents()
			data, err := Encode(b, c)
			if err != nil {
				t.Fatal(err)
			}
			if got := Codec(data[3]); got != CodecItems && got != CodecItemsDeflate {
				t.Fatalf("a batch with events went out as %v", got)
			}
			out, err := Decode(data)
			if err != nil {
				t.Fatalf("%v readings=%v: %v", c, withReadings, err)
			}
			if !reflect.DeepEqual(b, out) {
				t.Fatalf("round trip changed the batch:\n in %+v\nout %+v", b, out)
			}
			if out.LastSeq() != b.FirstSeq+uint64(b.Len())-1 {
				t.Fatalf("last seq %d", out.LastSeq())
			}
		}
	}
	// Without events the old codecs are kept, for older clouds.
	data, err := Encode(exampleBatch(), CodecRowsDeflate)
	if err != nil || Codec(data[3]) != CodecRowsDeflate {
		t.Fatalf("readings-only batch: codec %v, %v", Codec(data[3]), err)
	}
}

func TestEventValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(e *Event)
		want string
	}{
		{"no kind", func(e *Event) { e.Kind = "" }, "event kind id is empty"},
		{"no time", func(e *Event) { e.Time = time.Time{} }, "time is not set"},
		{"long key", func(e *Event) { e.Key = strings.Repeat("k", 65) }, "longer than 64"},
		{"control in key", func(e *Event) { e.Key = "a\x00b" }, "control character"},
		{"bad attr name", func(e *Event) { e.Attrs["a b"] = "x" }, "not allowed"},
		{"long attr", func(e *Event) { e.Attrs["note"] = strings.Repeat("x", 129) }, "longer than 128"},
		{"NaN value", func(e *Event) { e.Values["count"] = e.Values["count"] / 0 * 0 }, "is NaN"},
		{"attr and value", func(e *Event) { e.Values["state"] = 1 }, "both an attribute and a value"},
		{"too many", func(e *Event) {
			for i := 0; i < 16; i++ {
				e.Attrs["a"+string(rune('a'+i))] = "x"
			}
		}, "more than 16"},
	}
	for _, tc := range tests {
		e := exampleEvents()[0]
		tc.mod(&e)
		if err := e.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestEventsSectionRefused(t *testing.T) {
	body := AppendEvents(nil, exampleEvents())
	tests := []struct {
		name string
		b    []byte
		n    int
		want string
	}{
		{"count mismatch", body, 3, "2 events where 3 were announced"},
		{"cut", body[:len(body)-3], 2, ""},
		{"trailing", append(append([]byte{}, body...), 9), 2, "bytes left after 2 events"},
		{"empty", nil, 1, "event count"},
	}
	for _, tc := range tests {
		_, err := DecodeEvents(tc.b, tc.n)
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestAttrText(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	tests := []struct {
		name, in, want string
	}{
		{"plain", "read holding 0+3: timeout", "read holding 0+3: timeout"},
		{"control characters", "line1\nline2\t\x7f", "line1 line2  "},
		{"invalid UTF-8", "bad \xff\xfe byte", "bad ?? byte"},
		{"replacement character", "x\uFFFDy", "x?y"},
		{"exactly the limit", strings.Repeat("a", MaxAttrLen), strings.Repeat("a", MaxAttrLen)},
		{"cut at a character boundary", long, strings.Repeat("é", 62) + "…"},
		{"cut ASCII", strings.Repeat("a", 200), strings.Repeat("a", MaxAttrLen-3) + "…"},
	}
	for _, tc := range tests {
		got := AttrText(tc.in)
		if got != tc.want {
			t.Errorf("%s: AttrText(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
		e := Event{Device: "d", Kind: EventConnection, Time: time.Unix(1, 0), Attrs: map[string]string{"error": got}}
		if err := e.Validate(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// A mode event travels like any other: the kind is new, the codec is not.
func TestModeEventRoundTrip(t *testing.T) {
	e := Event{Device: "cod-analyzer", Kind: EventMode, Time: time.Date(2026, 11, 21, 6, 2, 0, 0, time.UTC), Clock: ClockNTP,
		Attrs: map[string]string{"state": ModeCalibration, "source": "register"}, Values: map[string]float64{"raw": 3}}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := DecodeEvents(AppendEvents(nil, []Event{e}), 1)
	if err != nil || !reflect.DeepEqual(out, []Event{e}) {
		t.Fatalf("%v: %+v", err, out)
	}
	if e.Acquired() {
		t.Error("a mode event is reported about a device, not acquired from it")
	}
	for _, m := range Modes {
		if !ValidMode(m) {
			t.Errorf("%s", m)
		}
	}
	if ValidMode("manual") || ValidMode("") {
		t.Error("ValidMode takes what is not a mode")
	}
}
