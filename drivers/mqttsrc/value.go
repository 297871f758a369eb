package mqttsrc

import (
	"bytes"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// number reads a raw JSON value as a reading value: a number, a string
// holding a JSON number, or a boolean (1 or 0). null reports missing; any
// other value, or a number beyond float64, reports ok false.
func number(raw []byte) (v float64, missing, ok bool) {
	if len(raw) == 0 {
		return 0, true, false
	}
	switch raw[0] {
	case 'n':
		return 0, true, false
	case 't':
		return 1, false, true
	case 'f':
		return 0, false, true
	case '"':
		s, ok := stringBytes(raw)
		if !ok || !isNumber(s) {
			return 0, false, false
		}
		raw = s
	}
	if !isNumber(raw) {
		return 0, false, false
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, false, false
	}
	return v, false, true
}

// stringBytes returns the content of the JSON string raw, unescaped.
func stringBytes(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return in, true
	}
	s, ok := unquote(raw)
	return []byte(s), ok
}

// text reads a raw JSON string (unescaped) or number (as written) as text.
func text(raw []byte) ([]byte, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	if raw[0] == '"' {
		return stringBytes(raw)
	}
	if isNumber(raw) {
		return raw, true
	}
	return nil, false
}

// isNumber reports whether b is a JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(b)
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// deviceID makes s a valid device id (see Mapping.Device): ASCII letters
// lowercased, other characters outside [a-z0-9_.-] (and a leading . or -)
// replaced by "_", one per character. It refuses a value with no ASCII
// letter or digit, or one longer than telemetry.MaxNameLen characters.
func deviceID(s []byte) (string, bool) {
	if utf8.RuneCount(s) > telemetry.MaxNameLen {
		return "", false
	}
	clean, alnum := true, false
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			alnum = true
		case c == '_' || (i > 0 && (c == '.' || c == '-')):
		default:
			clean = false
			if c >= 'A' && c <= 'Z' {
				alnum = true
			}
		}
	}
	if !alnum {
		return "", false
	}
	if clean {
		return string(s), true
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRune(s[i:])
		switch {
		case r >= 'A' && r <= 'Z':
			out = append(out, byte(r)+'a'-'A')
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' ||
			(len(out) > 0 && (r == '.' || r == '-')):
			out = append(out, byte(r))
		default:
			out = append(out, '_')
		}
		i += n
	}
	return string(out), true
}

// Bounds on payload times: outside them the time is refused and the
// arrival time used (a node whose clock was never set reports 1970).
var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// parseTime reads a raw JSON value as a time in format.
func parseTime(raw []byte, format string) (time.Time, bool) {
	var t time.Time
	switch format {
	case TimeRFC3339:
		s, ok := stringBytes(raw)
		if !ok {
			return time.Time{}, false
		}
		var err error
		if t, err = time.Parse(time.RFC3339Nano, string(s)); err != nil {
			return time.Time{}, false
		}
	case TimeUnixS, TimeUnixMS:
		v, _, ok := number(raw)
		if !ok || raw[0] == 't' || raw[0] == 'f' {
			return time.Time{}, false
		}
		secs := v
		if format == TimeUnixMS {
			secs = v / 1e3
		}
		if !(secs >= float64(minTime.Unix()) && secs < float64(maxTime.Unix())) {
			return time.Time{}, false
		}
		whole, frac := math.Modf(v)
		if format == TimeUnixMS {
			t = time.UnixMilli(int64(whole)).Add(time.Duration(math.Round(frac * 1e6)))
		} else {
			t = time.Unix(int64(whole), int64(math.Round(frac*1e9)))
		}
	default:
		return time.Time{}, false
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, false
	}
	return t.UTC(), true
}
