package mqttsrc

import (
	"fmt"
	"math"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Mapping says how the JSON payloads of one kind of device become readings.
// It is the mqtt section of a device profile.
//
// Paths are dotted: deviceInfo.devEui, object.water_SOIL, rxInfo.0.rssi. A
// segment that is a decimal number indexes an array, or names the key of
// an object ({"1": 25} is reached with "1"); the path "." is the whole
// payload (a bare number or boolean). Keys holding a dot cannot be reached.
type Mapping struct {
	// Device is where the device id comes from: a JSON path such as
	// deviceInfo.devEui, "topic:N" for the N-th (0-based) level of the
	// topic (topic:3 of application/APP/device/EUI/event/up is EUI), or
	// "const:ID" for a fixed id. A path or topic value is made a valid
	// id: ASCII letters are lowercased and every other character outside
	// A–Z a–z 0–9 _ . - (and a leading . or -) becomes "_"; a value with no
	// letter or digit, or longer than telemetry.MaxNameLen, is refused.
	Device string `yaml:"device"`
	// Time is the JSON path of the acquisition time. Empty means the time
	// the message arrived, with the gateway's clock quality.
	Time string `yaml:"time"`
	// TimeFormat is how Time is written: rfc3339 (the default, a JSON
	// string), unix_s or unix_ms (a JSON number or a string holding one;
	// fractions allowed).
	TimeFormat string `yaml:"time_format"`
	// TimeClock is how the payload's time was known, as a clock quality
	// (unknown, ntp, gps, rtc, unsynced); default unknown. A ChirpStack
	// server's time is ntp.
	TimeClock string `yaml:"time_clock"`
	// Filter keeps only payloads whose value at each path (or topic:N)
	// equals the given text: fPort: 2 keeps JSON 2 (and 2.0), confirmed:
	// true keeps JSON true, a string keeps the equal JSON string. A payload
	// without the path is filtered out.
	Filter map[string]string `yaml:"filter"`
	// Fields are the metrics taken from each payload.
	Fields []Field `yaml:"fields"`
}

// Field is one metric taken from a payload.
type Field struct {
	// Path is the JSON path of the value. The value may be a number, a
	// string holding a JSON number (codecs that use toFixed emit "31.20"),
	// or a boolean (1 or 0). A missing path or a null gives no reading.
	Path   string    `yaml:"path"`
	Metric string    `yaml:"metric"` // reading name, e.g. soil_moisture
	Unit   string    `yaml:"unit"`
	Scale  float64   `yaml:"scale"` // default 1; value = raw × scale + offset
	Offset float64   `yaml:"offset"`
	Range  []float64 `yaml:"range"` // [min, max] valid range after scaling; outside is bad
}

// Time formats.
const (
	TimeRFC3339 = "rfc3339"
	TimeUnixS   = "unix_s"
	TimeUnixMS  = "unix_ms"
)

// MaxFields bounds the fields of one mapping.
const MaxFields = 256

// Normalize fills defaults.
func (m *Mapping) Normalize() {
	if m.Time != "" {
		if m.TimeFormat == "" {
			m.TimeFormat = TimeRFC3339
		}
		if m.TimeClock == "" {
			m.TimeClock = telemetry.ClockUnknown.String()
		}
	}
	for i := range m.Fields {
		if m.Fields[i].Scale == 0 {
			m.Fields[i].Scale = 1
		}
	}
}

// Check reports what is wrong with a normalized mapping, as field path →
// message pairs (for example "fields[2].path") for the caller to place.
func (m *Mapping) Check() map[string]string {
	bad := map[string]string{}
	if m.Device == "" {
		bad["device"] = "is required: a JSON path, topic:N or const:ID"
	} else if _, err := parseDevice(m.Device); err != nil {
		bad["device"] = err.Error()
	}
	if m.Time != "" {
		if _, err := parsePath(m.Time); err != nil {
			bad["time"] = err.Error()
		}
		switch m.TimeFormat {
		case TimeRFC3339, TimeUnixS, TimeUnixMS:
		default:
			bad["time_format"] = fmt.Sprintf("%q is not one of rfc3339, unix_s, unix_ms", m.TimeFormat)
		}
		if _, err := telemetry.ParseClockQuality(m.TimeClock); err != nil {
			bad["time_clock"] = fmt.Sprintf("%q is not one of unknown, ntp, gps, rtc, unsynced", m.TimeClock)
		}
	} else if m.TimeFormat != "" || m.TimeClock != "" {
		bad["time"] = "is required when time_format or time_clock is given"
	}
	for k := range m.Filter {
		if _, err := parseSource(k); err != nil {
			bad[yamlconf.Join("filter", k)] = err.Error()
		}
	}
	if len(m.Fields) == 0 {
		bad["fields"] = "needs at least one field"
	}
	if len(m.Fields) > MaxFields {
		bad["fields"] = fmt.Sprintf("%d fields, more than %d", len(m.Fields), MaxFields)
		return bad
	}
	seen := map[string]bool{}
	for i := range m.Fields {
		for k, msg := range m.Fields[i].check() {
			bad[yamlconf.Join("fields", i, k)] = msg
		}
		if mt := m.Fields[i].Metric; seen[mt] {
			bad[yamlconf.Join("fields", i, "metric")] = fmt.Sprintf("%q appears twice", mt)
		} else {
			seen[mt] = true
		}
	}
	return bad
}

// check reports what is wrong with a normalized field.
func (f *Field) check() map[string]string {
	bad := map[string]string{}
	if f.Path == "" {
		bad["path"] = "is required"
	} else if _, err := parsePath(f.Path); err != nil {
		bad["path"] = err.Error()
	}
	if err := telemetry.CheckName("metric", f.Metric); err != nil {
		bad["metric"] = err.Error()
	}
	// Validate knows the unit rules; ask it with an otherwise valid reading.
	probe := telemetry.Reading{Device: "d", Metric: "m", Unit: f.Unit, Time: time.Unix(1, 0)}
	if err := probe.Validate(); err != nil {
		bad["unit"] = err.Error()
	}
	if math.IsNaN(f.Scale) || math.IsInf(f.Scale, 0) || f.Scale == 0 {
		bad["scale"] = "must be a finite number other than 0"
	}
	if math.IsNaN(f.Offset) || math.IsInf(f.Offset, 0) {
		bad["offset"] = "must be a finite number"
	}
	if len(f.Range) != 0 && (len(f.Range) != 2 || !(f.Range[0] < f.Range[1])) {
		bad["range"] = "must be [min, max] with min < max"
	}
	return bad
}
