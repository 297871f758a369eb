// Package rules reads early-warning rules from YAML and checks them: every
// problem is reported with the file, line and field, as for the gateway's
// configuration. The engine (alert/engine) evaluates what this package
// accepts.
//
// A rule file holds a list of rules; each has a kind (threshold, rate,
// nodata, composite, accumulation, classification, event, forecast), a
// selector of the series it judges, ordered levels in the four colours, and
// test cases that `go test` runs against the real engine. An entry with
// `tunes: <rule id>` changes another rule (a pack's) instead of adding one;
// a nodata rule tunes the built-in DeviceSilent alert for the devices it
// selects (meaning.go).
package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/standards"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// Kinds of rule.
const (
	Threshold      = "threshold"
	Rate           = "rate"
	NoData         = "nodata"
	Composite      = "composite"
	Accumulation   = "accumulation"
	Classification = "classification"
	Event          = "event"
	Forecast       = "forecast"
)

var kinds = []string{Threshold, Rate, NoData, Composite, Accumulation, Classification, Event, Forecast}

// File is one rule file.
type File struct {
	Rules []Rule `yaml:"rules"`
}

// Rule is one early-warning rule.
type Rule struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	Kind string `yaml:"kind"`
	// Standard names the standard or source of the rule's numbers
	// ("GB 3838-2002", "CMA 2007 frost signal").
	Standard string `yaml:"standard"`
	// StandardCN is the same in Chinese, for the console and the Chinese
	// half of messages; without it they show Standard.
	StandardCN string   `yaml:"standard_cn"`
	Disabled   bool     `yaml:"disabled"`
	Select     Selector `yaml:"select"`
	Input      Input    `yaml:"input"`
	// For is how long the condition must hold before the alert fires;
	// ClearFor how long a lower level (or none) must hold before the alert
	// steps down or resolves. Escalation is immediate.
	For      time.Duration `yaml:"for"`
	ClearFor time.Duration `yaml:"clear_for"`
	Levels   []Level       `yaml:"levels"`

	Change     *Change       `yaml:"change"`     // rate
	When       []Condition   `yaml:"when"`       // composite
	Accumulate *Accumulate   `yaml:"accumulate"` // accumulation
	Classify   *Classify     `yaml:"classify"`   // classification
	NoData     *NoDataSpec   `yaml:"nodata"`     // nodata
	Event      *EventSpec    `yaml:"event"`      // event
	Forecast   *ForecastSpec `yaml:"forecast"`   // forecast

	// Tunes names the rule this entry changes (a pack's rule): it may turn
	// it off (disabled) or on (enable), add overrides, change its selector,
	// durations, labels and annotations; it has no kind of its own.
	Tunes  string `yaml:"tunes"`
	Enable bool   `yaml:"enable"`

	Overrides   []Override        `yaml:"overrides"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	Tests       []TestCase        `yaml:"tests"`

	// File and Line locate the rule, for messages.
	File string `yaml:"-"`
	Line int    `yaml:"-"`
}

// Selector limits the series a rule judges; empty lists match all. Device
// entries are "gateway/device".
type Selector struct {
	Gateway []string `yaml:"gateway"`
	Site    []string `yaml:"site"`
	Device  []string `yaml:"device"`
	Profile []string `yaml:"profile"`
}

// Matches reports whether a series of device dev on gateway gw at site with
// profile is selected.
func (s *Selector) Matches(gw, site, dev, profile string) bool {
	return in(s.Gateway, gw) && in(s.Site, site) && in(s.Profile, profile) &&
		(len(s.Device) == 0 || slices.Contains(s.Device, gw+"/"+dev))
}

func in(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }

// Input is the value a rule judges: a metric, optionally aggregated over a
// window, or a derived index.
type Input struct {
	Metric string `yaml:"metric"`
	// Agg is last (default), mean, min or max over Window.
	Agg    string        `yaml:"agg"`
	Window time.Duration `yaml:"window"`
	// Derive "thi" judges the temperature-humidity index of Metric (air
	// temperature, °C) and Humidity (relative humidity, %) of the same
	// device: THI = 0.8·T + RH·(T − 14.4) + 46.4 with RH as 0–1.
	Derive   string `yaml:"derive"`
	Humidity string `yaml:"humidity"`
	// MaxAge is how old the humidity may be to pair with a temperature
	// (default 10m).
	MaxAge time.Duration `yaml:"max_age"`
}

// Level is one warning level. A level holds when Op(value, Set) is true
// and keeps holding until Op(value, Clear) is false (hysteresis). For a
// classification rule, Class names the class from which it holds.
type Level struct {
	Severity alert.Severity `yaml:"severity"`
	Op       string         `yaml:"op"`
	Set      *float64       `yaml:"set"`
	Clear    *float64       `yaml:"clear"`
	Class    string         `yaml:"class"`
}

// Change is a rate-of-change rule's measure: how far the value fell (drop)
// or rose (rise) within Window, against the window's extreme; the newest
// value is the median of the last three, so a single spike does not count.
type Change struct {
	Window     time.Duration `yaml:"window"`
	Direction  string        `yaml:"direction"`   // drop or rise
	MinSamples int           `yaml:"min_samples"` // default 3
}

// Condition is one gate of a composite rule: the newest value of Metric at
// the same site (any device), no older than MaxAge (default 30m) when the
// input arrives, must satisfy Op Value.
type Condition struct {
	Metric string        `yaml:"metric"`
	Op     string        `yaml:"op"`
	Value  float64       `yaml:"value"`
	MaxAge time.Duration `yaml:"max_age"`
}

// Accumulation functions.
const (
	Sum        = "sum"         // sum of values within Window
	Increase   = "increase"    // rise of a counter within Window (resets count from 0): rain gauges
	DegreeDays = "degree_days" // Σ max(0, (Tmax+Tmin)/2 − Base) per day since Since, Tmin clipped to Base, Tmax to Cutoff
	THIHours   = "thi_hours"   // Σ max(0, THI − Base) × hours within Window
	HotDays    = "hot_days"    // consecutive days whose maximum reached Threshold
)

var accumulations = []string{Sum, Increase, DegreeDays, THIHours, HotDays}

// Accumulate is an accumulation rule's measure.
type Accumulate struct {
	Func      string        `yaml:"func"`
	Window    time.Duration `yaml:"window"`
	Base      float64       `yaml:"base"`
	Cutoff    *float64      `yaml:"cutoff"`
	Since     string        `yaml:"since"` // MM-DD, the biofix (planting, first catch)
	Threshold float64       `yaml:"threshold"`
	Humidity  string        `yaml:"humidity"`
	// Timezone decides where days begin (IANA name; default UTC).
	Timezone string `yaml:"timezone"`
}

// Classify is a classification rule's measure: the class of the value in
// a standard's table (package standards); levels name classes.
type Classify struct {
	Table string `yaml:"table"`
}

// NoDataSpec is a no-data rule: a device is silent when nothing came for
// After × its expected interval (default 3), or for Timeout if set.
type NoDataSpec struct {
	After   float64       `yaml:"after"`
	Timeout time.Duration `yaml:"timeout"`
}

// Override replaces level thresholds for one device ("gateway/device"),
// site or profile. Precedence: device, site, profile, the rule.
type Override struct {
	Device  string                `yaml:"device"`
	Site    string                `yaml:"site"`
	Profile string                `yaml:"profile"`
	Levels  map[string]LevelValue `yaml:"levels"` // by severity name
}

// LevelValue is an override of one level's values.
type LevelValue struct {
	Set   *float64 `yaml:"set"`
	Clear *float64 `yaml:"clear"`
}

// TestCase is an input series and the alert states expected of it. Points
// are "<offset> metric=value …" (offset a duration from the start: "15m");
// Expect entries are "<offset> <state> [severity]", checked after every
// point up to the offset has been judged (and no-data checked at it).
type TestCase struct {
	Name    string   `yaml:"name"`
	Site    string   `yaml:"site"`
	Device  string   `yaml:"device"`
	Profile string   `yaml:"profile"`
	Start   string   `yaml:"start"` // RFC 3339; default 2026-06-01T00:00:00Z
	Points  []string `yaml:"points"`
	Expect  []string `yaml:"expect"`
}

var idPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Validate implements yamlconf.Validator.
func (f *File) Validate(r *yamlconf.Report) {
	seen := map[string]int{}
	for i := range f.Rules {
		rl := &f.Rules[i]
		p := yamlconf.Join("rules", i)
		if rl.Tunes != "" {
			rl.validateTuning(r, p)
			continue
		}
		if j, dup := seen[rl.ID]; dup && rl.ID != "" {
			r.Errorf(p+".id", "%q is also rules[%d]'s id", rl.ID, j)
		}
		seen[rl.ID] = i
		rl.validate(r, p)
	}
}

func (rl *Rule) validate(r *yamlconf.Report, p string) {
	if !idPattern.MatchString(rl.ID) {
		r.Errorf(p+".id", "%q must be lower case letters, digits and _ (a letter first, at most 64)", rl.ID)
	}
	if rl.Enable {
		r.Errorf(p+".enable", "only a tuning (tunes: <rule id>) enables a rule; a rule of your own is on unless disabled")
	}
	if strings.TrimSpace(rl.Standard) == "" {
		r.Errorf(p+".standard", "is required: name the standard or source of the numbers")
	}
	if !slices.Contains(kinds, rl.Kind) {
		r.Errorf(p+".kind", "%q is not one of %s", rl.Kind, strings.Join(kinds, ", "))
		return
	}
	if rl.For < 0 || rl.ClearFor < 0 {
		r.Errorf(p+".for", "durations must not be negative")
	}
	for _, k := range []string{"severity", "level", "rule", "source"} {
		if _, ok := rl.Labels[k]; ok {
			r.Errorf(p+".labels."+k, "is set by the engine")
		}
	}
	want := map[string]bool{Rate: rl.Change != nil, Composite: len(rl.When) > 0, Accumulation: rl.Accumulate != nil,
		Classification: rl.Classify != nil, NoData: rl.NoData != nil, Event: rl.Event != nil, Forecast: rl.Forecast != nil}
	for kind, has := range want {
		if has && kind != rl.Kind {
			r.Errorf(p+"."+section(kind), "belongs to kind %s, not %s", kind, rl.Kind)
		}
		if !has && kind == rl.Kind {
			r.Errorf(p+"."+section(kind), "is required for kind %s", kind)
		}
	}
	switch rl.Kind {
	case NoData:
		rl.validateNoData(r, p)
	case Event:
		if rl.Event != nil {
			rl.validateEvent(r, p)
		}
	default:
		rl.validateInput(r, p)
		rl.validateLevels(r, p)
	}
	switch {
	case rl.Change != nil:
		c := rl.Change
		if c.Window <= 0 {
			r.Errorf(p+".change.window", "must be positive")
		}
		if c.Direction != "drop" && c.Direction != "rise" {
			r.Errorf(p+".change.direction", "%q is not drop or rise", c.Direction)
		}
		if c.MinSamples == 0 {
			c.MinSamples = 3
		}
		if c.MinSamples < 2 {
			r.Errorf(p+".change.min_samples", "must be at least 2")
		}
	case rl.Kind == Composite:
		for i := range rl.When {
			c := &rl.When[i]
			cp := yamlconf.Join(p, "when", i)
			if c.Metric == "" {
				r.Errorf(cp+".metric", "is required")
			}
			if !validOp(c.Op) {
				r.Errorf(cp+".op", "%q is not one of < <= > >=", c.Op)
			}
			if c.MaxAge == 0 {
				c.MaxAge = 30 * time.Minute
			}
			if c.MaxAge < 0 {
				r.Errorf(cp+".max_age", "must be positive")
			}
		}
	case rl.Accumulate != nil:
		rl.validateAccumulate(r, p+".accumulate")
	case rl.Classify != nil:
		if _, ok := standards.Lookup(rl.Classify.Table); !ok {
			r.Errorf(p+".classify.table", "%q is not a known table (%s)", rl.Classify.Table, strings.Join(standards.Names(), ", "))
		}
	case rl.Forecast != nil:
		rl.validateForecast(r, p)
	}
	rl.validateOverrides(r, p)
	for k, v := range rl.Annotations {
		if _, err := ParseText(v); err != nil {
			r.Errorf(p+".annotations."+k, "%v", err)
		}
	}
	for i, tc := range rl.Tests {
		tp := yamlconf.Join(p, "tests", i)
		if tc.Name == "" {
			r.Errorf(tp+".name", "is required")
		}
		if len(tc.Expect) == 0 {
			r.Errorf(tp+".expect", "a test without expectations proves nothing")
		}
		if _, err := tc.Parse(); err != nil {
			r.Errorf(tp, "%v", err)
		}
	}
}

func section(kind string) string {
	return map[string]string{Rate: "change", Composite: "when", Accumulation: "accumulate",
		Classification: "classify", NoData: "nodata", Event: "event", Forecast: "forecast"}[kind]
}

func (rl *Rule) validateNoData(r *yamlconf.Report, p string) {
	if rl.NoData.After == 0 && rl.NoData.Timeout == 0 {
		rl.NoData.After = 3
	}
	if rl.NoData.After < 0 || rl.NoData.Timeout < 0 {
		r.Errorf(p+".nodata", "after and timeout must not be negative")
	}
	if len(rl.Levels) != 1 || rl.Levels[0].Severity == alert.None {
		r.Errorf(p+".levels", "a nodata rule has exactly one level, with a severity")
	}
}

func (rl *Rule) validateInput(r *yamlconf.Report, p string) {
	in := &rl.Input
	if in.Metric == "" {
		r.Errorf(p+".input.metric", "is required")
	}
	switch in.Agg {
	case "", "last":
		in.Agg = "last"
	case "mean", "min", "max":
		if in.Window <= 0 {
			r.Errorf(p+".input.window", "is required with agg %s", in.Agg)
		}
	default:
		r.Errorf(p+".input.agg", "%q is not one of last, mean, min, max", in.Agg)
	}
	switch in.Derive {
	case "":
	case "thi":
		if in.Humidity == "" {
			r.Errorf(p+".input.humidity", "is required to derive thi")
		}
	default:
		r.Errorf(p+".input.derive", "%q is not thi", in.Derive)
	}
	if in.MaxAge == 0 {
		in.MaxAge = 10 * time.Minute
	}
}

func (rl *Rule) validateLevels(r *yamlconf.Report, p string) {
	if len(rl.Levels) == 0 {
		r.Errorf(p+".levels", "at least one level is required")
		return
	}
	var table *standards.Table
	if rl.Classify != nil {
		table, _ = standards.Lookup(rl.Classify.Table)
	}
	prev := alert.None
	for i := range rl.Levels {
		l := &rl.Levels[i]
		lp := yamlconf.Join(p, "levels", i)
		if l.Severity == alert.None {
			r.Errorf(lp+".severity", "is required (blue, yellow, orange, red)")
		} else if l.Severity <= prev {
			r.Errorf(lp+".severity", "levels must be listed from the lowest severity up")
		}
		prev = l.Severity
		if rl.Kind == Classification {
			if table == nil {
				continue
			}
			idx := table.Index(l.Class)
			if idx < 0 {
				r.Errorf(lp+".class", "%q is not a class of %s (%s)", l.Class, table.Name, strings.Join(table.ClassNames(), ", "))
				continue
			}
			// A class index at or above idx holds the level.
			v := float64(idx)
			l.Op, l.Set, l.Clear = ">=", &v, &v
			continue
		}
		if !validOp(l.Op) {
			r.Errorf(lp+".op", "%q is not one of < <= > >=", l.Op)
		}
		if l.Set == nil {
			r.Errorf(lp+".set", "is required")
			continue
		}
		if l.Clear == nil {
			l.Clear = l.Set
		}
		if worse(l.Op, *l.Clear, *l.Set) {
			r.Errorf(lp+".clear", "%g is beyond set %g: the level could never clear", *l.Clear, *l.Set)
		}
	}
	// Higher levels must be harder to reach.
	for i := 1; i < len(rl.Levels); i++ {
		a, b := rl.Levels[i-1], rl.Levels[i]
		if a.Set != nil && b.Set != nil && a.Op == b.Op && worse(a.Op, *a.Set, *b.Set) {
			r.Errorf(yamlconf.Join(p, "levels", i, "set"), "%g is milder than the lower level's %g", *b.Set, *a.Set)
		}
	}
}

// worse reports whether a is strictly further into op's alarm side than b.
func worse(op string, a, b float64) bool {
	if op == "<" || op == "<=" {
		return a < b
	}
	return a > b
}

func validOp(op string) bool { return op == "<" || op == "<=" || op == ">" || op == ">=" }

func (rl *Rule) validateAccumulate(r *yamlconf.Report, p string) {
	a := rl.Accumulate
	if !slices.Contains(accumulations, a.Func) {
		r.Errorf(p+".func", "%q is not one of %s", a.Func, strings.Join(accumulations, ", "))
		return
	}
	switch a.Func {
	case Sum, Increase, THIHours:
		if a.Window <= 0 {
			r.Errorf(p+".window", "is required for %s", a.Func)
		}
	case DegreeDays:
		if _, err := time.Parse("01-02", a.Since); err != nil {
			r.Errorf(p+".since", "%q is not MM-DD", a.Since)
		}
	}
	if a.Func == THIHours && a.Humidity == "" {
		r.Errorf(p+".humidity", "is required for thi_hours")
	}
	if a.Timezone != "" {
		if _, err := time.LoadLocation(a.Timezone); err != nil {
			r.Errorf(p+".timezone", "%v", err)
		}
	}
}

func (rl *Rule) validateOverrides(r *yamlconf.Report, p string) {
	for i, o := range rl.Overrides {
		op := yamlconf.Join(p, "overrides", i)
		n := 0
		for _, v := range []string{o.Device, o.Site, o.Profile} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			r.Errorf(op, "name exactly one of device, site, profile")
		}
		if o.Device != "" && !strings.Contains(o.Device, "/") {
			r.Errorf(op+".device", "%q must be gateway/device", o.Device)
		}
		for sev, v := range o.Levels {
			s, err := alert.ParseSeverity(sev)
			if err != nil || !slices.ContainsFunc(rl.Levels, func(l Level) bool { return l.Severity == s }) {
				r.Errorf(op+".levels."+sev, "the rule has no %s level", sev)
			}
			if v.Set == nil && v.Clear == nil {
				r.Errorf(op+".levels."+sev, "set or clear is required")
			}
		}
	}
}

// Load reads every *.yaml file in dir (sorted), or the file dir names.
func Load(path string) ([]Rule, error) {
	files := []string{path}
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("cannot read rules: %w", err)
	} else if st.IsDir() {
		files, _ = filepath.Glob(filepath.Join(path, "*.yaml"))
		sort.Strings(files)
	}
	var all []Rule
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("cannot read rules: %w", err)
		}
		rs, err := Parse(f, data)
		if err != nil {
			return nil, err
		}
		all = append(all, rs...)
	}
	return all, Check(all)
}

// Parse decodes and validates one rule file; the error names file, line
// and field.
func Parse(file string, data []byte) ([]Rule, error) {
	var f File
	if err := yamlconf.Decode(file, data, &f); err != nil {
		return nil, err
	}
	lines := yamlconf.Lines(data)
	for i := range f.Rules {
		f.Rules[i].File, f.Rules[i].Line = file, lines[yamlconf.Join("rules", i)]
	}
	return f.Rules, nil
}

// Check refuses rule ids used twice across files. Tunings are not rules
// and are not checked here (Resolve applies them).
func Check(rs []Rule) error {
	at := map[string]string{}
	for _, r := range rs {
		if r.Tunes != "" {
			continue
		}
		where := r.Where()
		if prev, dup := at[r.ID]; dup {
			return fmt.Errorf("%s: rule %q is already defined at %s", where, r.ID, prev)
		}
		at[r.ID] = where
	}
	return nil
}

// Where is the rule's file and line.
func (rl *Rule) Where() string { return fmt.Sprintf("%s:%d", rl.File, rl.Line) }

// ParseText parses an annotation as a template in Prometheus's manner:
// {{ $value }} is the alert's value, {{ $labels.site }} one of its labels.
// Text without {{ is returned as nil: it is used as it is.
func ParseText(text string) (*template.Template, error) {
	if !strings.Contains(text, "{{") {
		return nil, nil
	}
	t, err := template.New("annotation").Option("missingkey=zero").
		Parse("{{$labels := .Labels}}{{$value := .Value}}" + text)
	if err != nil {
		return nil, fmt.Errorf("bad template: %v", err)
	}
	return t, nil
}
