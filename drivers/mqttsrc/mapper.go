package mqttsrc

import (
	"encoding/json"
	"maps"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// MaxPayload bounds the payloads a Mapper reads; larger ones are refused
// (counted as oversize) without being parsed.
const MaxPayload = 256 << 10

// Kinds of refused input counted in Stats().Errors.
const (
	ErrOversize    = "oversize"     // payload larger than MaxPayload
	ErrInvalidJSON = "invalid_json" // payload is not JSON
	ErrNoDevice    = "no_device"    // device path or topic level missing or null
	ErrBadDevice   = "bad_device"   // device value not text, or no letter or digit, or too long
	ErrNoTime      = "no_time"      // time path missing or null; arrival time used
	ErrBadTime     = "bad_time"     // time unreadable, or outside 2000–2200; arrival time used
	ErrNotNumber   = "not_number"   // field value not a number, numeric string or boolean
)

// Skipped counts what a Mapper passed over without it being an error.
type Skipped struct {
	Filtered uint64 // payloads that did not match the filter
	Missing  uint64 // fields absent (or null) in an accepted payload
}

// Mapper turns MQTT messages into readings according to a Mapping. Its
// methods are safe for concurrent use.
type Mapper struct {
	paths     trie // every JSON path read, found in one pass
	device    deviceSpec
	devSlot   int // slot of the device path, when it is one
	timeSlot  int
	hasTime   bool
	format    string
	timeClock telemetry.ClockQuality
	filter    []filter
	fields    []field
	clock     func() telemetry.ClockQuality

	mu      sync.Mutex
	stats   stream.Stats
	skipped Skipped
}

type filter struct {
	src     source
	slot    int // of src.path, when it is a path
	want    string
	wantNum float64 // want as a number, when isNum
	isNum   bool
}

type field struct {
	slot          int
	metric, unit  string
	scale, offset float64
	hasRange      bool
	min, max      float64
	divide        bool    // scale is 1/divisor exactly: divide for exact decimals
	divisor       float64 // when divide
}

// NewMapper prepares m, which must have passed Check after Normalize
// (NewMapper normalizes a copy again; parts that fail Check match nothing).
// clock tells the gateway's clock quality, stamped on readings timed by
// arrival; nil means unknown.
func NewMapper(m Mapping, clock func() telemetry.ClockQuality) *Mapper {
	m.Fields = append([]Field(nil), m.Fields...)
	m.Normalize()
	mp := &Mapper{clock: clock, format: m.TimeFormat}
	// A part that fails Check gets slot -1: its value is never present.
	var err error
	mp.devSlot, mp.timeSlot = -1, -1
	if mp.device, err = parseDevice(m.Device); err != nil {
		mp.device = deviceSpec{source: source{level: -1}}
	} else if mp.device.constant == "" && mp.device.level < 0 {
		mp.devSlot = mp.paths.add(mp.device.path)
	}
	if m.Time != "" {
		mp.hasTime = true
		mp.timeClock, _ = telemetry.ParseClockQuality(m.TimeClock)
		if p, err := parsePath(m.Time); err == nil {
			mp.timeSlot = mp.paths.add(p)
		}
	}
	for k, v := range m.Filter {
		f := filter{slot: -1, want: v}
		src, err := parseSource(k)
		switch {
		case err != nil:
			f.src.level = -1
		case src.level >= 0:
			f.src = src
		default:
			f.src, f.slot = src, mp.paths.add(src.path)
		}
		if isNumber([]byte(v)) {
			n, err := strconv.ParseFloat(v, 64)
			f.wantNum, f.isNum = n, err == nil
		}
		mp.filter = append(mp.filter, f)
	}
	for _, f := range m.Fields {
		p, err := parsePath(f.Path)
		if err != nil || f.Path == "" {
			continue
		}
		cf := field{slot: mp.paths.add(p), metric: f.Metric, unit: f.Unit, scale: f.Scale, offset: f.Offset}
		if len(f.Range) == 2 {
			cf.hasRange, cf.min, cf.max = true, f.Range[0], f.Range[1]
		}
		if f.Scale > 0 && f.Scale < 1 {
			if inv := 1 / f.Scale; math.Abs(inv-math.Round(inv)) < 1e-9 {
				cf.divide, cf.divisor = true, math.Round(inv)
			}
		}
		mp.fields = append(mp.fields, cf)
	}
	return mp
}

// Map turns one message into readings. now is when it arrived (zero means
// time.Now()). Whatever the topic and payload, Map does not panic, and
// with a mapping that passed Check every reading it returns passes
// telemetry.Reading.Validate. What it cannot use is counted in Stats (by
// kind) or Skipped; a payload is either refused whole (oversize, invalid
// JSON, no usable device) or mapped field by field.
func (mp *Mapper) Map(topic string, payload []byte, now time.Time) stream.Output {
	if now.IsZero() {
		now = time.Now()
	}
	if len(payload) > MaxPayload {
		mp.count(ErrOversize)
		return stream.Output{}
	}
	if !json.Valid(payload) {
		mp.count(ErrInvalidJSON)
		return stream.Output{}
	}
	var buf [24]span
	spans := buf[:]
	if mp.paths.slots > len(buf) {
		spans = make([]span, mp.paths.slots)
	}
	spans = spans[:mp.paths.slots]
	mp.paths.extract(payload, spans)

	raw := func(slot int) []byte {
		if slot < 0 {
			return nil
		}
		return spans[slot].value(payload)
	}
	for _, f := range mp.filter {
		if !f.match(topic, raw(f.slot)) {
			mp.mu.Lock()
			mp.skipped.Filtered++
			mp.mu.Unlock()
			return stream.Output{}
		}
	}
	dev, kind := mp.deviceOf(topic, raw(mp.devSlot))
	if kind != "" {
		mp.count(kind)
		return stream.Output{}
	}
	at, clock, timeErr := mp.timeOf(raw(mp.timeSlot), now)

	var missing, notNumber uint64
	readings := make([]telemetry.Reading, 0, len(mp.fields))
	for i := range mp.fields {
		f := &mp.fields[i]
		v, isMissing, ok := number(raw(f.slot))
		if isMissing {
			missing++
			continue
		}
		if ok {
			v = f.apply(v)
		}
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			notNumber++
			continue
		}
		q := telemetry.Good
		if f.hasRange && (v < f.min || v > f.max) {
			q = telemetry.Bad
		}
		readings = append(readings, telemetry.Reading{
			Device: dev, Metric: f.metric, Value: v, Unit: f.unit,
			Time: at, Quality: q, Clock: clock,
		})
	}

	mp.mu.Lock()
	mp.stats.Accepted(now)
	mp.skipped.Missing += missing
	if notNumber > 0 {
		if mp.stats.Errors == nil {
			mp.stats.Errors = map[string]uint64{}
		}
		mp.stats.Errors[ErrNotNumber] += notNumber
	}
	if timeErr != "" {
		mp.stats.Count(timeErr)
	}
	mp.mu.Unlock()
	if len(readings) == 0 {
		return stream.Output{}
	}
	return stream.Output{Readings: readings}
}

// apply scales a raw value. A scale of 10^-k divides by 10^k, so 658 × 0.1
// is 65.8, not 65.80000000000001.
func (f *field) apply(raw float64) float64 {
	if f.divide {
		return raw/f.divisor + f.offset
	}
	return raw*f.scale + f.offset
}

// deviceOf resolves the device id from the topic or the raw JSON value v,
// or tells the kind of error.
func (mp *Mapper) deviceOf(topic string, v []byte) (string, string) {
	d := &mp.device
	if d.constant != "" {
		return d.constant, ""
	}
	var raw []byte
	if d.level >= 0 {
		l, ok := topicLevel(topic, d.level)
		if !ok || l == "" {
			return "", ErrNoDevice
		}
		raw = []byte(l)
	} else {
		if len(v) == 0 || v[0] == 'n' {
			return "", ErrNoDevice
		}
		var ok bool
		if raw, ok = text(v); !ok {
			return "", ErrBadDevice
		}
	}
	id, ok := deviceID(raw)
	if !ok {
		return "", ErrBadDevice
	}
	return id, ""
}

// timeOf returns the acquisition time and its clock quality given the raw
// JSON time, and the kind of error if it was refused in favour of now.
func (mp *Mapper) timeOf(raw []byte, now time.Time) (time.Time, telemetry.ClockQuality, string) {
	kind := ""
	if mp.hasTime {
		if len(raw) == 0 || raw[0] == 'n' {
			kind = ErrNoTime
		} else if t, ok := parseTime(raw, mp.format); ok {
			return t, mp.timeClock, ""
		} else {
			kind = ErrBadTime
		}
	}
	c := telemetry.ClockUnknown
	if mp.clock != nil {
		c = mp.clock()
	}
	return now, c, kind
}

// match reports whether the topic or the raw JSON value holds the wanted
// value.
func (f *filter) match(topic string, raw []byte) bool {
	if f.src.level >= 0 {
		l, ok := topicLevel(topic, f.src.level)
		return ok && l == f.want
	}
	if len(raw) == 0 {
		return false
	}
	switch raw[0] {
	case '"':
		s, ok := stringBytes(raw)
		return ok && string(s) == f.want
	case 't', 'f', 'n':
		return string(raw) == f.want
	}
	if string(raw) == f.want {
		return true
	}
	if !f.isNum {
		return false
	}
	got, err := strconv.ParseFloat(string(raw), 64)
	return err == nil && got == f.wantNum
}

func (mp *Mapper) count(kind string) {
	mp.mu.Lock()
	mp.stats.Count(kind)
	mp.mu.Unlock()
}

// Stats reports the payloads accepted (Frames: valid JSON that passed the
// filter and named a device) and those refused, by kind (Err* constants).
func (mp *Mapper) Stats() stream.Stats {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	s := mp.stats
	s.Errors = maps.Clone(s.Errors)
	return s
}

// Skipped reports what was passed over without being an error.
func (mp *Mapper) Skipped() Skipped {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	return mp.skipped
}
