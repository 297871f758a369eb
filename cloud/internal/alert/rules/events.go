package rules

import (
	"maps"
	"regexp"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// EventSpec is an event rule's input: events of Kind from the gateways (a
// buoy's drift, a buffer gap, a clock change, a quarantined device, a tag
// read …; telemetry/event.go lists them).
//
// An event that matches Match (attribute = value, all of them; empty
// matches every event of the kind) and whose key is not in KeyNotIn sets
// the alert: its measure is Values[Value], or 1 without Value. An event
// that matches Clear ends it, as does Hold passing without another setting
// event (counted from when the last one reached the cloud, so news of old
// data loss still pages). With Absent instead, the alert fires when a device
// that sends such events has sent none for that long (a reader gone quiet).
type EventSpec struct {
	Kind     string            `yaml:"kind"`
	Match    map[string]string `yaml:"match"`
	Clear    map[string]string `yaml:"clear"`
	Value    string            `yaml:"value"`
	Unit     string            `yaml:"unit"` // of Value, for explanations ("m")
	Hold     time.Duration     `yaml:"hold"`
	KeyNotIn []string          `yaml:"key_not_in"`
	Absent   time.Duration     `yaml:"absent"`
}

func (rl *Rule) validateEvent(r *yamlconf.Report, p string) {
	ev := rl.Event
	ep := p + ".event"
	if !namePattern.MatchString(ev.Kind) {
		r.Errorf(ep+".kind", "%q is not an event kind (drift, gap, clock, quarantine, buffer, connection, tag …)", ev.Kind)
	}
	if ev.Hold < 0 || ev.Absent < 0 {
		r.Errorf(ep, "hold and absent must not be negative")
	}
	if ev.Absent > 0 {
		if len(ev.Clear) > 0 || ev.Hold > 0 || ev.Value != "" {
			r.Errorf(ep+".absent", "an absence rule fires on no events: clear, hold and value do not apply")
		}
		if len(rl.Levels) != 1 || rl.Levels[0].Severity == alert.None || rl.Levels[0].Set != nil {
			r.Errorf(p+".levels", "an absence rule has exactly one level, with a severity and no threshold")
		}
		return
	}
	if len(ev.Clear) == 0 && ev.Hold == 0 {
		r.Errorf(ep, "say how the alert ends: clear (an event that ends it) or hold (how long after the last one)")
	}
	if len(ev.Clear) > 0 && len(ev.Match) > 0 && maps.Equal(ev.Clear, ev.Match) {
		r.Errorf(ep+".clear", "is the same as match: the alert would end as it starts")
	}
	if ev.Value == "" && ev.Unit != "" {
		r.Errorf(ep+".unit", "is the unit of event.value, which is not set")
	}
	if ev.Value == "" {
		if len(rl.Levels) != 1 || rl.Levels[0].Severity == alert.None || rl.Levels[0].Set != nil {
			r.Errorf(p+".levels", "without event.value there is no number to judge: give exactly one level, with a severity and no threshold")
			return
		}
		one := 1.0
		rl.Levels[0].Op, rl.Levels[0].Set, rl.Levels[0].Clear = ">=", &one, &one
		return
	}
	if !namePattern.MatchString(ev.Value) {
		r.Errorf(ep+".value", "%q is not a value name", ev.Value)
	}
	rl.validateLevels(r, p)
}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
