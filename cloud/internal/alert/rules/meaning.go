package rules

import (
	"errors"
	"fmt"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
	"slices"
	"sort"
	"strings"
)

// BuiltinDeviceSilent is the id of the built-in no-data alert that nodata
// rules tune.
const BuiltinDeviceSilent = "device_silent"

// Resolve turns the rules of packs and files into the rules to run: it
// applies every tuning (tunes: <id>) to its rule, refuses rules that mean
// the same thing as another on overlapping series, and refuses nodata rules
// whose tunings of the built-in DeviceSilent collide. Notes say, one line
// each, what was tuned and merged, for the log. Errors name file and line
// of both rules.
func Resolve(all []Rule) (out []Rule, notes []string, err error) {
	byID := map[string]int{}
	for _, r := range all {
		if r.Tunes == "" {
			out = append(out, r)
			byID[r.ID] = len(out) - 1
		}
	}
	if err := Check(out); err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, t := range all {
		if t.Tunes == "" {
			continue
		}
		i, ok := byID[t.Tunes]
		if !ok {
			hint := ""
			if t.Tunes == BuiltinDeviceSilent {
				hint = ": the built-in DeviceSilent is tuned by nodata rules (kind: nodata, select, nodata, levels)"
			}
			errs = append(errs, fmt.Errorf("%s: tunes: there is no rule %q%s", t.Where(), t.Tunes, hint))
			continue
		}
		note, err := tune(&out[i], &t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		notes = append(notes, note)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	on := make([]*Rule, 0, len(out))
	for i := range out {
		if !out[i].Disabled {
			on = append(on, &out[i])
		}
	}
	for i, a := range on {
		for _, b := range on[i+1:] {
			if a.Kind == NoData || b.Kind == NoData {
				continue
			}
			if m := a.Meaning(); m == b.Meaning() && a.Select.Overlaps(&b.Select) {
				errs = append(errs, fmt.Errorf("%s: rule %s means the same as rule %s at %s (%s) on overlapping series: "+
					"one reading would raise two alerts. Narrow one with select, turn one off (tunes: %s, disabled: true), "+
					"or change its numbers with overrides instead of a copy", b.Where(), b.ID, a.ID, a.Where(), m, a.ID))
			}
		}
	}
	silence, err := silenceTunings(on)
	if err != nil {
		errs = append(errs, err)
	}
	notes = append(notes, silence...)
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return out, notes, nil
}

// tune applies tuning t to r.
func tune(r *Rule, t *Rule) (string, error) {
	var did []string
	switch {
	case t.Disabled && !r.Disabled:
		r.Disabled = true
		did = append(did, "off")
	case t.Enable && r.Disabled:
		r.Disabled = false
		did = append(did, "on")
	}
	for _, o := range t.Overrides {
		for sev := range o.Levels {
			if !slices.ContainsFunc(r.Levels, func(l Level) bool { return l.Severity.String() == sev }) {
				return "", fmt.Errorf("%s: tunes %s: its overrides name a %s level the rule does not have", t.Where(), r.ID, sev)
			}
		}
	}
	if n := len(t.Overrides); n > 0 {
		r.Overrides = append(slices.Clone(t.Overrides), r.Overrides...) // the tuning's come first: they win
		did = append(did, fmt.Sprintf("%d overrides", n))
	}
	if !t.Select.Empty() {
		r.Select = t.Select
		did = append(did, "select "+t.Select.String())
	}
	if t.For > 0 {
		r.For = t.For
		did = append(did, "for "+t.For.String())
	}
	if t.ClearFor > 0 {
		r.ClearFor = t.ClearFor
		did = append(did, "clear_for "+t.ClearFor.String())
	}
	for k, v := range t.Labels {
		switch k {
		case "severity", "level", "rule", "source":
			return "", fmt.Errorf("%s: tunes %s: label %s is set by the engine", t.Where(), r.ID, k)
		}
		r.Labels = withKey(r.Labels, k, v)
		did = append(did, "label "+k)
	}
	for k, v := range t.Annotations {
		r.Annotations = withKey(r.Annotations, k, v)
		did = append(did, "annotation "+k)
	}
	if len(did) == 0 {
		return "", fmt.Errorf("%s: tunes %s but changes nothing", t.Where(), r.ID)
	}
	return fmt.Sprintf("%s tunes rule %s (%s): %s", t.Where(), r.ID, r.Where(), strings.Join(did, ", ")), nil
}

func withKey(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

// silenceTunings checks that no device is tuned by two nodata rules of the
// same specificity (the more specific selector wins) and says what each
// tunes.
func silenceTunings(on []*Rule) ([]string, error) {
	var nd []*Rule
	for _, r := range on {
		if r.Kind == NoData {
			nd = append(nd, r)
		}
	}
	var errs []error
	var notes []string
	for i, a := range nd {
		for _, b := range nd[i+1:] {
			if a.Select.Specificity() == b.Select.Specificity() && a.Select.Overlaps(&b.Select) {
				errs = append(errs, fmt.Errorf("%s: nodata rule %s and rule %s at %s both tune the built-in DeviceSilent "+
					"for the same devices (%s): a device has one silence alert; make one selector narrower or drop one",
					b.Where(), b.ID, a.ID, a.Where(), b.Select.String()))
			}
		}
		what := "after " + fmt.Sprint(a.NoData.After) + " intervals"
		if a.NoData.Timeout > 0 {
			what = "after " + a.NoData.Timeout.String()
		}
		notes = append(notes, fmt.Sprintf("%s: nodata rule %s tunes the built-in DeviceSilent for %s: %s %s",
			a.Where(), a.ID, a.Select.String(), a.Levels[0].Severity, what))
	}
	return notes, errors.Join(errs...)
}

// Meaning is what a rule judges, in one line: rules with the same meaning
// compute the same number from the same input and alarm on the same side of
// it, so on the same series they would raise two alerts for one cause.
func (rl *Rule) Meaning() string {
	in := rl.Input
	input := in.Metric
	if in.Derive != "" {
		input = in.Derive + "(" + in.Metric + "," + in.Humidity + ")"
	}
	if in.Agg != "" && in.Agg != "last" {
		input = fmt.Sprintf("%s(%s over %v)", in.Agg, input, in.Window)
	}
	side := ""
	if len(rl.Levels) > 0 {
		side = sideOf(rl.Levels[0].Op)
	}
	switch rl.Kind {
	case Threshold:
		return fmt.Sprintf("%s %s", input, side)
	case Composite:
		gates := make([]string, 0, len(rl.When))
		for _, w := range rl.When {
			gates = append(gates, fmt.Sprintf("%s %s %g", w.Metric, w.Op, w.Value))
		}
		sort.Strings(gates)
		return fmt.Sprintf("%s %s when %s", input, side, strings.Join(gates, " and "))
	case Classification:
		return fmt.Sprintf("class of %s in %s", input, rl.Classify.Table)
	case Rate:
		return fmt.Sprintf("%s of %s within %v", rl.Change.Direction, input, rl.Change.Window)
	case Accumulation:
		a := rl.Accumulate
		return fmt.Sprintf("%s of %s (window %v, base %g, threshold %g, since %s, humidity %s)", a.Func, input,
			a.Window, a.Base, a.Threshold, a.Since, a.Humidity)
	case Forecast:
		f := rl.Forecast
		return fmt.Sprintf("hours until %s %s %g (trend over %v)", input, f.Toward.Op, f.Toward.Value, f.Window)
	case Event:
		ev := rl.Event
		if ev.Absent > 0 {
			return fmt.Sprintf("no %s event %s for %v", ev.Kind, attrs(ev.Match), ev.Absent)
		}
		return fmt.Sprintf("%s events %s%s, value %q", ev.Kind, attrs(ev.Match), keysNotIn(ev.KeyNotIn), ev.Value)
	}
	return rl.Kind
}

func sideOf(op string) string {
	if op == "<" || op == "<=" {
		return "low"
	}
	return "high"
}

func attrs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k+"="+m[k])
	}
	sort.Strings(keys)
	return "{" + strings.Join(keys, ",") + "}"
}

func keysNotIn(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	k := slices.Clone(keys)
	sort.Strings(k)
	return " key not in " + strings.Join(k, ",")
}

// Empty reports whether the selector takes every series.
func (s *Selector) Empty() bool {
	return len(s.Gateway)+len(s.Site)+len(s.Device)+len(s.Profile) == 0
}

// Specificity ranks a selector by its most specific list: device 4, site
// 3, profile 2, gateway 1, none 0.
func (s *Selector) Specificity() int {
	switch {
	case len(s.Device) > 0:
		return 4
	case len(s.Site) > 0:
		return 3
	case len(s.Profile) > 0:
		return 2
	case len(s.Gateway) > 0:
		return 1
	}
	return 0
}

// Overlaps reports whether some series could be taken by both selectors.
func (s *Selector) Overlaps(o *Selector) bool {
	meet := func(a, b []string) bool {
		return len(a) == 0 || len(b) == 0 || slices.ContainsFunc(a, func(x string) bool { return slices.Contains(b, x) })
	}
	if !meet(s.Gateway, o.Gateway) || !meet(s.Site, o.Site) || !meet(s.Profile, o.Profile) || !meet(s.Device, o.Device) {
		return false
	}
	// A device list names gateways too.
	onGateways := func(devs, gws []string) bool {
		return len(devs) == 0 || len(gws) == 0 || slices.ContainsFunc(devs, func(d string) bool {
			gw, _, _ := strings.Cut(d, "/")
			return slices.Contains(gws, gw)
		})
	}
	return onGateways(s.Device, o.Gateway) && onGateways(o.Device, s.Gateway)
}

// String describes the selector for messages.
func (s *Selector) String() string {
	var parts []string
	for _, d := range []struct {
		name string
		list []string
	}{{"gateway", s.Gateway}, {"site", s.Site}, {"device", s.Device}, {"profile", s.Profile}} {
		if len(d.list) > 0 {
			parts = append(parts, d.name+" "+strings.Join(d.list, ","))
		}
	}
	if len(parts) == 0 {
		return "every device"
	}
	return strings.Join(parts, "; ")
}

// validateTuning checks an entry that tunes another rule: it may carry only
// what a tuning can change.
func (rl *Rule) validateTuning(r *yamlconf.Report, p string) {
	if rl.ID != "" && !idPattern.MatchString(rl.ID) {
		r.Errorf(p+".id", "%q must be lower case letters, digits and _ (a letter first, at most 64)", rl.ID)
	}
	if rl.Enable && rl.Disabled {
		r.Errorf(p+".enable", "a tuning cannot both enable and disable %s", rl.Tunes)
	}
	for field, set := range map[string]bool{"kind": rl.Kind != "", "input": rl.Input != (Input{}),
		"levels": len(rl.Levels) > 0, "change": rl.Change != nil, "when": len(rl.When) > 0,
		"accumulate": rl.Accumulate != nil, "classify": rl.Classify != nil, "nodata": rl.NoData != nil,
		"event": rl.Event != nil, "forecast": rl.Forecast != nil, "tests": len(rl.Tests) > 0} {
		if set {
			r.Errorf(p+"."+field, "a tuning (tunes: %s) cannot change %s: write a rule of your own instead", rl.Tunes, field)
		}
	}
	if rl.For < 0 || rl.ClearFor < 0 {
		r.Errorf(p+".for", "durations must not be negative")
	}
	for i, o := range rl.Overrides {
		if n := btoi(o.Device != "") + btoi(o.Site != "") + btoi(o.Profile != ""); n != 1 {
			r.Errorf(yamlconf.Join(p, "overrides", i), "name exactly one of device, site, profile")
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
