package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
)

// Point is one parsed test input: values of metrics, and events, at an
// offset.
type Point struct {
	At     time.Duration
	Values map[string]float64
	Events []EventPoint
}

// EventPoint is an event in a test case: "@drift state=drifting
// distance_m=250" (numbers are values, other words attributes; key= sets
// the key and device= the reporting device, the case's by default).
type EventPoint struct {
	Kind, Device, Key string
	Attrs             map[string]string
	Values            map[string]float64
}

// Expectation is one parsed expected state at an offset.
type Expectation struct {
	At       time.Duration
	State    alert.State
	Severity alert.Severity
	Text     string // as written, for messages
}

// Parsed is a test case ready to run.
type Parsed struct {
	Start  time.Time
	Points []Point
	Expect []Expectation
}

// DefaultTestStart is when test series begin unless a case says.
var DefaultTestStart = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// Parse reads the case's compact points and expectations.
func (tc *TestCase) Parse() (Parsed, error) {
	p := Parsed{Start: DefaultTestStart}
	if tc.Start != "" {
		t, err := time.Parse(time.RFC3339, tc.Start)
		if err != nil {
			return p, fmt.Errorf("start %q is not RFC 3339", tc.Start)
		}
		p.Start = t
	}
	var last time.Duration = -1
	for i, s := range tc.Points {
		f := strings.Fields(s)
		if len(f) < 2 {
			return p, fmt.Errorf("points[%d] %q: want \"<offset> metric=value …\"", i, s)
		}
		at, err := time.ParseDuration(f[0])
		if err != nil || at < 0 {
			return p, fmt.Errorf("points[%d] %q: bad offset %q", i, s, f[0])
		}
		if at < last {
			return p, fmt.Errorf("points[%d] %q: offsets must not go back in time", i, s)
		}
		last = at
		pt := Point{At: at, Values: map[string]float64{}}
		var ev *EventPoint
		for _, kv := range f[1:] {
			if kind, ok := strings.CutPrefix(kv, "@"); ok {
				if kind == "" {
					return p, fmt.Errorf("points[%d] %q: @ needs an event kind (@drift)", i, s)
				}
				pt.Events = append(pt.Events, EventPoint{Kind: kind, Attrs: map[string]string{}, Values: map[string]float64{}})
				ev = &pt.Events[len(pt.Events)-1]
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return p, fmt.Errorf("points[%d] %q: %q is not metric=value", i, s, kv)
			}
			x, err := strconv.ParseFloat(v, 64)
			switch {
			case ev == nil && err != nil:
				return p, fmt.Errorf("points[%d] %q: %q is not metric=value", i, s, kv)
			case ev == nil:
				pt.Values[k] = x
			case k == "key":
				ev.Key = v
			case k == "device":
				ev.Device = v
			case err == nil:
				ev.Values[k] = x
			default:
				ev.Attrs[k] = v
			}
		}
		p.Points = append(p.Points, pt)
	}
	last = -1
	for i, s := range tc.Expect {
		f := strings.Fields(s)
		if len(f) < 2 || len(f) > 3 {
			return p, fmt.Errorf("expect[%d] %q: want \"<offset> <state> [severity]\"", i, s)
		}
		at, err := time.ParseDuration(f[0])
		if err != nil || at < last {
			return p, fmt.Errorf("expect[%d] %q: bad or earlier offset %q", i, s, f[0])
		}
		last = at
		e := Expectation{At: at, State: alert.State(f[1]), Text: s}
		switch e.State {
		case alert.Inactive, alert.Pending, alert.Firing, alert.Resolved:
		default:
			return p, fmt.Errorf("expect[%d] %q: state %q is not inactive, pending, firing or resolved", i, s, f[1])
		}
		if len(f) == 3 {
			if e.Severity, err = alert.ParseSeverity(f[2]); err != nil {
				return p, fmt.Errorf("expect[%d] %q: %v", i, s, err)
			}
		}
		if e.State == alert.Firing && e.Severity == alert.None {
			return p, fmt.Errorf("expect[%d] %q: say which severity fires", i, s)
		}
		p.Expect = append(p.Expect, e)
	}
	return p, nil
}
