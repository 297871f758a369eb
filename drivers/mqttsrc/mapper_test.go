package mqttsrc

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// arrival is the "now" given to Map in the tests.
var arrival = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

func gatewayClock() telemetry.ClockQuality { return telemetry.ClockGPS }

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// want is one expected reading.
type want struct {
	metric string
	value  float64
	bad    bool
}

// mapping builds a normalized, checked mapping of fields given as
// "path=metric" with defaults.
func mapping(t testing.TB, device string, fields ...string) Mapping {
	t.Helper()
	m := Mapping{Device: device}
	for _, f := range fields {
		p, metric, _ := strings.Cut(f, "=")
		m.Fields = append(m.Fields, Field{Path: p, Metric: metric})
	}
	return m
}

func TestMap(t *testing.T) {
	docs := readFile(t, "chirpstack/docs-up.json")
	iob := readFile(t, "chirpstack/iobroker-dragino-up.json")
	docsTime := time.Date(2022, 7, 18, 9, 34, 15, 775023242, time.UTC)
	csTopic := "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up"
	big := `{"v":1,"pad":"` + strings.Repeat("x", MaxPayload) + `"}`

	with := func(m Mapping, edit func(*Mapping)) Mapping {
		m.Fields = append([]Field(nil), m.Fields...)
		edit(&m)
		return m
	}
	timed := func(m Mapping, path, format string) Mapping {
		m.Time, m.TimeFormat = path, format
		return m
	}
	one := mapping(t, "const:node-1", "v=value")

	tests := []struct {
		name    string
		m       Mapping
		topic   string
		payload string
		device  string    // expected device of every reading
		at      time.Time // expected time; zero means arrival
		clock   telemetry.ClockQuality
		want    []want
		errs    map[string]uint64
		skipped Skipped
	}{
		{
			name: "chirpstack docs example: paths, array index, nested objects",
			m: with(mapping(t, "deviceInfo.devEui", "rxInfo.0.rssi=rssi", "rxInfo.0.snr=snr",
				"txInfo.modulation.lora.spreadingFactor=sf", "fPort=fport"), func(m *Mapping) {
				m.Time, m.TimeClock = "time", "ntp"
			}),
			topic: csTopic, payload: docs, device: "0101010101010101", at: docsTime, clock: telemetry.ClockNTP,
			want: []want{{"rssi", -36, false}, {"snr", 10.5, false}, {"sf", 11, false}, {"fport", 1, false}},
		},
		{
			name:  "real capture: device from deviceName, codec object",
			m:     timed(mapping(t, "deviceInfo.deviceName", "object.soiltemperature=soil_temperature", "object.volt=battery", "rxInfo.0.snr=snr", "object.soilmoisture=soil_moisture"), "time", ""),
			topic: "application/d63c10b6-9263-4ab3-9299-4308fa19a2ad/device/a84041f621857cd2/event/up", payload: iob,
			device: "skimmer", at: time.Date(2024, 1, 21, 17, 1, 36, 641008000, time.UTC), clock: telemetry.ClockUnknown,
			want: []want{{"soil_temperature", -0.1, false}, {"battery", 3.318, false}, {"snr", 6.25, false}, {"soil_moisture", 0, false}},
		},
		{
			name:    "docs example without codec object: missing paths give no reading",
			m:       mapping(t, "deviceInfo.devEui", "object.water_SOIL=soil_moisture", "rxInfo.1.rssi=rssi2", "rxInfo.0.rssi=rssi"),
			payload: docs, device: "0101010101010101",
			want:    []want{{"rssi", -36, false}},
			skipped: Skipped{Missing: 2},
		},
		{
			name:    "array index past the end, index into an object key, root array",
			m:       mapping(t, "const:n1", "0.a=a", "0.b.1=b1", "0.c.5=c5", "1=second"),
			payload: `[{"a":1,"b":{"1":25},"c":[1,2]}, 7]`, device: "n1",
			want:    []want{{"a", 1, false}, {"b1", 25, false}, {"second", 7, false}},
			skipped: Skipped{Missing: 1},
		},
		{
			name:  "whole payload is the value",
			m:     mapping(t, "topic:1", ".=temperature"),
			topic: "shellies/Shelly-H&T-A1B2/sensor/temperature", payload: " 21.75 \n", device: "shelly-h_t-a1b2",
			want: []want{{"temperature", 21.75, false}},
		},
		{
			name:  "topic level: chirpstack dev_eui",
			m:     mapping(t, "topic:3", "v=value"),
			topic: "application/app/device/A84041000181C0E1/event/up", payload: `{"v":2}`, device: "a84041000181c0e1",
			want: []want{{"value", 2, false}},
		},
		{
			name: "topic level beyond the topic", m: mapping(t, "topic:7", "v=value"),
			topic: "a/b", payload: `{"v":2}`, errs: map[string]uint64{ErrNoDevice: 1},
		},
		{
			name: "empty topic level", m: mapping(t, "topic:1", "v=value"),
			topic: "a//c", payload: `{"v":2}`, errs: map[string]uint64{ErrNoDevice: 1},
		},
		{
			name: "constant device", m: one, payload: `{"v":-3}`, device: "node-1",
			want: []want{{"value", -3, false}},
		},
		// Device ids.
		{name: "id sanitised: case and space", m: mapping(t, "id", "v=value"), payload: `{"id":"Test device","v":1}`, device: "test_device", want: []want{{"value", 1, false}}},
		{name: "id sanitised: one _ per non-ASCII character", m: mapping(t, "id", "v=value"), payload: `{"id":"Flurtüre","v":1}`, device: "flurt_re", want: []want{{"value", 1, false}}},
		{name: "id sanitised: leading dash", m: mapping(t, "id", "v=value"), payload: `{"id":"-x.y-z","v":1}`, device: "_x.y-z", want: []want{{"value", 1, false}}},
		{name: "id with JSON escapes", m: mapping(t, "id", "v=value"), payload: `{"id":"\u0041B\/c","v":1}`, device: "ab_c", want: []want{{"value", 1, false}}},
		{name: "id from a number", m: mapping(t, "id", "v=value"), payload: `{"id":17,"v":1}`, device: "17", want: []want{{"value", 1, false}}},
		{name: "id of 64 characters", m: mapping(t, "id", "v=value"), payload: `{"id":"` + strings.Repeat("é", 63) + `A","v":1}`, device: strings.Repeat("_", 63) + "a", want: []want{{"value", 1, false}}},
		{name: "id too long", m: mapping(t, "id", "v=value"), payload: `{"id":"` + strings.Repeat("a", 65) + `","v":1}`, errs: map[string]uint64{ErrBadDevice: 1}},
		{name: "id without letter or digit", m: mapping(t, "id", "v=value"), payload: `{"id":"?? !","v":1}`, errs: map[string]uint64{ErrBadDevice: 1}},
		{name: "id empty", m: mapping(t, "id", "v=value"), payload: `{"id":"","v":1}`, errs: map[string]uint64{ErrBadDevice: 1}},
		{name: "id is an object", m: mapping(t, "id", "v=value"), payload: `{"id":{"x":1},"v":1}`, errs: map[string]uint64{ErrBadDevice: 1}},
		{name: "id is a boolean", m: mapping(t, "id", "v=value"), payload: `{"id":true,"v":1}`, errs: map[string]uint64{ErrBadDevice: 1}},
		{name: "id is null", m: mapping(t, "id", "v=value"), payload: `{"id":null,"v":1}`, errs: map[string]uint64{ErrNoDevice: 1}},
		{name: "id missing", m: mapping(t, "id", "v=value"), payload: `{"v":1}`, errs: map[string]uint64{ErrNoDevice: 1}},
		// Times.
		{name: "rfc3339 with offset", m: timed(one, "t", TimeRFC3339), payload: `{"t":"2024-05-01T14:00:00.5+02:00","v":1}`, device: "node-1", at: time.Date(2024, 5, 1, 12, 0, 0, 5e8, time.UTC), want: []want{{"value", 1, false}}},
		{name: "unix seconds", m: timed(one, "t", TimeUnixS), payload: `{"t":1700000000,"v":1}`, device: "node-1", at: time.Unix(1700000000, 0).UTC(), want: []want{{"value", 1, false}}},
		{name: "unix seconds, fraction in a string", m: timed(one, "t", TimeUnixS), payload: `{"t":"1700000000.25","v":1}`, device: "node-1", at: time.Unix(1700000000, 25e7).UTC(), want: []want{{"value", 1, false}}},
		{name: "unix milliseconds", m: timed(one, "t", TimeUnixMS), payload: `{"t":1700000000123,"v":1}`, device: "node-1", at: time.UnixMilli(1700000000123).UTC(), want: []want{{"value", 1, false}}},
		{name: "clock never set: arrival time", m: timed(one, "t", TimeUnixS), payload: `{"t":12,"v":1}`, device: "node-1", want: []want{{"value", 1, false}}, errs: map[string]uint64{ErrBadTime: 1}},
		{name: "unix time is a boolean", m: timed(one, "t", TimeUnixS), payload: `{"t":true,"v":1}`, device: "node-1", want: []want{{"value", 1, false}}, errs: map[string]uint64{ErrBadTime: 1}},
		{name: "unix time overflows", m: timed(one, "t", TimeUnixMS), payload: `{"t":1e300,"v":1}`, device: "node-1", want: []want{{"value", 1, false}}, errs: map[string]uint64{ErrBadTime: 1}},
		{name: "rfc3339 unreadable", m: timed(one, "t", TimeRFC3339), payload: `{"t":"yesterday","v":1}`, device: "node-1", want: []want{{"value", 1, false}}, errs: map[string]uint64{ErrBadTime: 1}},
		{name: "rfc3339 given a number", m: timed(one, "t", TimeRFC3339), payload: `{"t":1700000000,"v":1}`, device: "node-1", want: []want{{"value", 1, false}}, errs: map[string]uint64{ErrBadTime: 1}},
		{name: "time missing", m: timed(one, "t", TimeRFC3339), payload: `{"v":1}`, device: "node-1", want: []want{{"value", 1, false}}, errs: map[string]uint64{ErrNoTime: 1}},
		{name: "time null", m: timed(one, "t", TimeRFC3339), payload: `{"t":null,"v":1}`, device: "node-1", want: []want{{"value", 1, false}}, errs: map[string]uint64{ErrNoTime: 1}},
		// Values: scale, offset, range.
		{
			name: "scale 0.1 is exact", payload: `{"v":658}`, device: "node-1",
			m:    with(one, func(m *Mapping) { m.Fields[0].Scale = 0.1 }),
			want: []want{{"value", 65.8, false}},
		},
		{
			name: "scale and offset", payload: `{"v":300}`, device: "node-1",
			m:    with(one, func(m *Mapping) { m.Fields[0].Scale, m.Fields[0].Offset = 0.5, -273.15 }),
			want: []want{{"value", 150 - 273.15, false}},
		},
		{
			name: "range: edges are good, outside is kept but bad", payload: `{"a":0,"b":100,"c":100.01,"d":-0.5}`, device: "n",
			m: with(mapping(t, "const:n", "a=a", "b=b", "c=c", "d=d"), func(m *Mapping) {
				for i := range m.Fields {
					m.Fields[i].Range = []float64{0, 100}
				}
			}),
			want: []want{{"a", 0, false}, {"b", 100, false}, {"c", 100.01, true}, {"d", -0.5, true}},
		},
		{
			name: "range applies after scaling", payload: `{"v":1200}`, device: "node-1",
			m:    with(one, func(m *Mapping) { m.Fields[0].Scale, m.Fields[0].Range = 0.1, []float64{-40, 85} }),
			want: []want{{"value", 120, true}},
		},
		{
			name: "scaling beyond float64 is refused", payload: `{"v":1e308}`,
			m:    with(one, func(m *Mapping) { m.Fields[0].Scale = 10 }),
			errs: map[string]uint64{ErrNotNumber: 1},
		},
		// Types of values.
		{
			name:    "numeric strings, booleans, null",
			m:       mapping(t, "const:n", "s=s", "neg=neg", "exp=exp", "t=t", "f=f", "null=null", "esc=esc"),
			payload: `{"s":"31.20","neg":"-1.49","exp":"1E3","t":true,"f":false,"null":null,"esc":"\u0031\u0032"}`, device: "n",
			want:    []want{{"s", 31.2, false}, {"neg", -1.49, false}, {"exp", 1000, false}, {"t", 1, false}, {"f", 0, false}, {"esc", 12, false}},
			skipped: Skipped{Missing: 1},
		},
		{
			name:    "wrong types are counted, the rest is kept",
			m:       mapping(t, "const:n", "obj=obj", "arr=arr", "word=word", "unit=unit", "space=space", "hex=hex", "inf=inf", "huge=huge", "empty=empty", "ok=ok"),
			payload: `{"obj":{"a":1},"arr":[1],"word":"abc","unit":"3.3 V","space":" 31","hex":"0x10","inf":"Infinity","huge":1e999,"empty":"","ok":5}`, device: "n",
			want: []want{{"ok", 5, false}},
			errs: map[string]uint64{ErrNotNumber: 9},
		},
		{
			name:    "duplicate keys: the last wins",
			m:       one,
			payload: `{"v":1,"v":2}`, device: "node-1",
			want: []want{{"value", 2, false}},
		},
		// Filters.
		{
			name:    "filter on a number matches 2 and 2.0",
			m:       with(one, func(m *Mapping) { m.Filter = map[string]string{"fPort": "2"} }),
			payload: `{"fPort":2.0,"v":1}`, device: "node-1", want: []want{{"value", 1, false}},
		},
		{
			name:    "filter on a number refuses another",
			m:       with(one, func(m *Mapping) { m.Filter = map[string]string{"fPort": "2"} }),
			payload: `{"fPort":5,"v":1}`, skipped: Skipped{Filtered: 1},
		},
		{
			name:    "filter path missing",
			m:       with(one, func(m *Mapping) { m.Filter = map[string]string{"fPort": "2"} }),
			payload: `{"v":1}`, skipped: Skipped{Filtered: 1},
		},
		{
			name:  "filter on a string, a boolean and a topic level",
			m:     with(one, func(m *Mapping) { m.Filter = map[string]string{"kind": "soil", "ok": "true", "topic:5": "up"} }),
			topic: csTopic, payload: `{"kind":"soil","ok":true,"v":1}`, device: "node-1", want: []want{{"value", 1, false}},
		},
		{
			name:    "filter on a string does not match the number",
			m:       with(one, func(m *Mapping) { m.Filter = map[string]string{"kind": "2"} }),
			payload: `{"kind":"2.0","v":1}`, skipped: Skipped{Filtered: 1},
		},
		{
			name:  "filter on a topic level refuses another event",
			m:     with(one, func(m *Mapping) { m.Filter = map[string]string{"topic:5": "up"} }),
			topic: "application/x/device/y/event/join", payload: `{"v":1}`, skipped: Skipped{Filtered: 1},
		},
		// Payloads that are not used at all.
		{name: "invalid JSON", m: one, payload: `{"v":1`, errs: map[string]uint64{ErrInvalidJSON: 1}},
		{name: "empty payload", m: one, payload: ``, errs: map[string]uint64{ErrInvalidJSON: 1}},
		{name: "two JSON values", m: one, payload: `{"v":1}{"v":2}`, errs: map[string]uint64{ErrInvalidJSON: 1}},
		{name: "oversized payload", m: one, payload: big, errs: map[string]uint64{ErrOversize: 1}},
		{name: "payload exactly at the limit", m: one, payload: big[:MaxPayload-2] + `"}`, device: "node-1", want: []want{{"value", 1, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			m.Normalize()
			if bad := m.Check(); len(bad) > 0 {
				t.Fatalf("mapping does not check: %v", bad)
			}
			mp := NewMapper(m, gatewayClock)
			out := mp.Map(tt.topic, []byte(tt.payload), arrival)
			if len(out.Events) != 0 || len(out.Send) != 0 {
				t.Errorf("unexpected events or bytes to send: %+v", out)
			}
			at, clock := tt.at, tt.clock
			if at.IsZero() {
				at, clock = arrival, telemetry.ClockGPS
			}
			if len(out.Readings) != len(tt.want) {
				t.Fatalf("got %d readings %+v; want %d", len(out.Readings), out.Readings, len(tt.want))
			}
			for i, r := range out.Readings {
				w := tt.want[i]
				if err := r.Validate(); err != nil {
					t.Errorf("reading %d does not validate: %v", i, err)
				}
				if r.Metric != w.metric || !near(r.Value, w.value) || (r.Quality == telemetry.Bad) != w.bad {
					t.Errorf("reading %d = %s %v %v; want %s %v bad=%v", i, r.Metric, r.Value, r.Quality, w.metric, w.value, w.bad)
				}
				if r.Device != tt.device {
					t.Errorf("device = %q; want %q", r.Device, tt.device)
				}
				if !r.Time.Equal(at) || r.Clock != clock {
					t.Errorf("time = %v (%v); want %v (%v)", r.Time, r.Clock, at, clock)
				}
			}
			st := mp.Stats()
			if len(st.Errors) != len(tt.errs) {
				t.Errorf("errors = %v; want %v", st.Errors, tt.errs)
			}
			for k, n := range tt.errs {
				if st.Errors[k] != n {
					t.Errorf("errors = %v; want %v", st.Errors, tt.errs)
				}
			}
			if got := mp.Skipped(); got != tt.skipped {
				t.Errorf("skipped = %+v; want %+v", got, tt.skipped)
			}
			accepted := tt.skipped.Filtered == 0 && st.Errors[ErrOversize]+st.Errors[ErrInvalidJSON]+st.Errors[ErrNoDevice]+st.Errors[ErrBadDevice] == 0
			if accepted != (st.Frames == 1) || accepted != st.LastFrame.Equal(arrival) {
				t.Errorf("frames = %d at %v; want accepted %v", st.Frames, st.LastFrame, accepted)
			}
		})
	}
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}

func TestMapClockDefaults(t *testing.T) {
	m := mapping(t, "const:n", "v=v")
	m.Normalize()
	out := NewMapper(m, nil).Map("t", []byte(`{"v":1}`), time.Time{})
	if len(out.Readings) != 1 {
		t.Fatalf("got %+v", out)
	}
	r := out.Readings[0]
	if r.Clock != telemetry.ClockUnknown || r.Time.IsZero() || time.Since(r.Time) > time.Minute {
		t.Errorf("without clock and arrival time: %v %v; want unknown, about now", r.Clock, r.Time)
	}
}

func TestMapStatsAccumulate(t *testing.T) {
	m := mapping(t, "id", "v=v", "w=w")
	m.Normalize()
	mp := NewMapper(m, nil)
	for _, p := range []string{`{"id":"a","v":"x","w":[]}`, `{"id":"a"}`, `nope`, `{"id":"a","v":1}`} {
		mp.Map("t", []byte(p), arrival)
	}
	st := mp.Stats()
	if st.Frames != 3 || st.Errors[ErrNotNumber] != 2 || st.Errors[ErrInvalidJSON] != 1 || mp.Skipped().Missing != 3 {
		t.Errorf("stats = %+v skipped %+v", st, mp.Skipped())
	}
	st.Errors[ErrNotNumber] = 99 // a copy
	if mp.Stats().Errors[ErrNotNumber] != 2 {
		t.Error("Stats returned the live map")
	}
}

// TestMapUncheckedMapping gives NewMapper a mapping that fails Check: it
// must not panic, and its broken parts match nothing.
func TestMapUncheckedMapping(t *testing.T) {
	for _, m := range []Mapping{
		{},
		{Device: "a..b", Fields: []Field{{Path: "v", Metric: "v"}}},
		{Device: "const:n", Time: "..", Fields: []Field{{Path: "v", Metric: "v"}}},
		{Device: "const:n", Filter: map[string]string{"topic:x": "1"}, Fields: []Field{{Path: "v", Metric: "v"}}},
		{Device: "const:n", Fields: []Field{{Path: "", Metric: "v"}, {Path: "x..y", Metric: "w"}}},
	} {
		mp := NewMapper(m, nil)
		if out := mp.Map("a/b", []byte(`{"v":1,"a":{"b":"x"}}`), arrival); len(out.Readings) > 1 {
			t.Errorf("%+v: %+v", m, out)
		}
	}
}
