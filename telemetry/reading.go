package telemetry

import (
	"fmt"
	"math"
	"time"
)

// Quality says how far a reading can be trusted.
type Quality uint8

// Quality values. Append only: the numbers travel on the wire and sit in
// stores.
const (
	// Good is a value read and decoded without complaint and within range.
	Good Quality = 0
	// Uncertain is a value that was read but may be wrong, for example a
	// sensor still warming up.
	Uncertain Quality = 1
	// Bad is a value outside the device's valid range, a sentinel such as
	// 0xFFFF, or NaN. It is kept, never silently dropped, so gaps are
	// explainable.
	Bad Quality = 2
)

var qualityNames = [...]string{Good: "good", Uncertain: "uncertain", Bad: "bad"}

func (q Quality) String() string {
	if int(q) < len(qualityNames) {
		return qualityNames[q]
	}
	return fmt.Sprintf("quality(%d)", uint8(q))
}

// MarshalText implements encoding.TextMarshaler ("good", "uncertain", "bad").
func (q Quality) MarshalText() ([]byte, error) { return []byte(q.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (q *Quality) UnmarshalText(b []byte) error {
	v, err := ParseQuality(string(b))
	*q = v
	return err
}

// Valid reports whether q is a known quality.
func (q Quality) Valid() bool { return int(q) < len(qualityNames) }

// ParseQuality is the inverse of Quality.String.
func ParseQuality(s string) (Quality, error) {
	for i, n := range qualityNames {
		if n == s {
			return Quality(i), nil
		}
	}
	return 0, fmt.Errorf("unknown quality %q", s)
}

// ClockQuality says how the acquisition time was known.
type ClockQuality uint8

// ClockQuality values. Append only.
const (
	// ClockUnknown means the gateway did not say.
	ClockUnknown ClockQuality = 0
	// ClockNTP is a clock disciplined by NTP (the kernel reports it synced).
	ClockNTP ClockQuality = 1
	// ClockGPS is a clock disciplined by a GNSS receiver.
	ClockGPS ClockQuality = 2
	// ClockRTC is a free-running battery-backed real-time clock.
	ClockRTC ClockQuality = 3
	// ClockUnsynced is a clock known not to be set (for example 1970 after a
	// boot without RTC or network).
	ClockUnsynced ClockQuality = 4
	// ClockRestamped is a time the gateway worked out afterwards: the
	// reading was taken before the clock was set, and dated once it was,
	// from the monotonic time elapsed since (accurate to the clock's
	// error plus the monotonic drift, milliseconds over hours).
	ClockRestamped ClockQuality = 5
)

var clockNames = [...]string{ClockUnknown: "unknown", ClockNTP: "ntp", ClockGPS: "gps", ClockRTC: "rtc",
	ClockUnsynced: "unsynced", ClockRestamped: "restamped"}

func (c ClockQuality) String() string {
	if int(c) < len(clockNames) {
		return clockNames[c]
	}
	return fmt.Sprintf("clock(%d)", uint8(c))
}

// Valid reports whether c is a known clock quality.
func (c ClockQuality) Valid() bool { return int(c) < len(clockNames) }

// ParseClockQuality is the inverse of ClockQuality.String.
func ParseClockQuality(s string) (ClockQuality, error) {
	for i, n := range clockNames {
		if n == s {
			return ClockQuality(i), nil
		}
	}
	return 0, fmt.Errorf("unknown clock quality %q", s)
}

// Reading is one value of one metric of one device, stamped when it was
// acquired at the edge.
type Reading struct {
	Device  string       // device id, unique within its gateway (a Name)
	Metric  string       // what was measured, e.g. soil_moisture (a Name)
	Value   float64      // in Unit, after the profile's scale and offset
	Unit    string       // e.g. "%", "°C", "µS/cm"; may be empty for counts
	Time    time.Time    // acquisition time
	Quality Quality      // how far the value can be trusted
	Clock   ClockQuality // how the acquisition time was known
}

// SeriesKey identifies a time series within one gateway.
type SeriesKey struct {
	Device, Metric string
}

// Key returns the reading's series.
func (r Reading) Key() SeriesKey { return SeriesKey{r.Device, r.Metric} }

// Validate checks that r can travel and be stored: names are Names, the unit
// is short printable text, the time is set, quality and clock are known, and
// a Good value is finite.
func (r Reading) Validate() error {
	if err := CheckName("device", r.Device); err != nil {
		return err
	}
	if err := CheckName("metric", r.Metric); err != nil {
		return err
	}
	if err := checkUnit(r.Unit); err != nil {
		return err
	}
	if r.Time.IsZero() {
		return fmt.Errorf("%s/%s: acquisition time is not set", r.Device, r.Metric)
	}
	if !r.Quality.Valid() {
		return fmt.Errorf("%s/%s: %v", r.Device, r.Metric, r.Quality)
	}
	if !r.Clock.Valid() {
		return fmt.Errorf("%s/%s: %v", r.Device, r.Metric, r.Clock)
	}
	if r.Quality == Good && (math.IsNaN(r.Value) || math.IsInf(r.Value, 0)) {
		return fmt.Errorf("%s/%s: value %v cannot be good", r.Device, r.Metric, r.Value)
	}
	return nil
}

// MaxNameLen bounds ids of gateways, devices, metrics and streams.
const MaxNameLen = 64

// CheckName checks an identifier used in topics and store tags: 1 to
// MaxNameLen characters from A–Z a–z 0–9 and "_.-", not starting with "." or
// "-". what names the identifier in the error.
func CheckName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s id is empty", what)
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("%s id %.20q… is longer than %d characters", what, s, MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
			(i > 0 && (c == '.' || c == '-'))
		if !ok {
			return fmt.Errorf("%s id %q: character %q at %d is not allowed (use letters, digits, _ . -)", what, s, c, i)
		}
	}
	return nil
}

// MaxUnitLen bounds a unit's length in bytes.
const MaxUnitLen = 16

func checkUnit(u string) error {
	if len(u) > MaxUnitLen {
		return fmt.Errorf("unit %q is longer than %d bytes", u, MaxUnitLen)
	}
	for _, c := range u {
		if c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c == 0xFFFD {
			return fmt.Errorf("unit %q holds a control or reserved character", u)
		}
	}
	return nil
}
