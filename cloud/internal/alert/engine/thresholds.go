package engine

import (
	"strings"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
)

// Threshold is one level of a threshold rule that judges a series, as a
// chart draws it: a horizontal line at Value in the colour of Severity.
type Threshold struct {
	Rule     string `json:"rule"`
	Name     string `json:"name"`
	NameCN   string `json:"name_cn,omitempty"`
	Standard string `json:"standard,omitempty"`
	// StandardCN is Standard in Chinese, when the rule gives it.
	StandardCN string `json:"standard_cn,omitempty"`
	Severity   string `json:"severity"`
	// Op is how the rule's measure is compared with Value (< <= > >=);
	// Clear is where the level lets go again (hysteresis).
	Op    string   `json:"op"`
	Value float64  `json:"value"`
	Clear *float64 `json:"clear,omitempty"`
	// Agg and Window say what the rule compares: the last value, or the
	// mean, min or max over Window ("24h").
	Agg    string `json:"agg"`
	Window string `json:"window,omitempty"`
	// Source is where the numbers come from: "rule", or the override
	// ("device gw/dev", "site s", "profile p").
	Source string `json:"source"`
}

// Thresholds returns the levels of every enabled threshold rule that would
// judge metric of device dev on gateway gw at site, with the thresholds of
// its overrides applied: the rules Observe would pick (same index by
// metric, same selector, same profile from the registry, same LevelsFor).
// Rules that judge a derived index (THI), and other kinds (rate,
// accumulation, classification, composite, forecast), have no line on the
// metric's own scale and are left out.
func (e *Engine) Thresholds(gw, site, dev, metric string) []Threshold {
	profile := ""
	if e.o.Registry != nil {
		profile = e.o.Registry.Profile(gw, dev)
	}
	out := []Threshold{}
	for _, c := range e.byMetric[metric] {
		if c.Kind != rules.Threshold || c.Input.Derive != "" || !c.Select.Matches(gw, site, dev, profile) {
			continue
		}
		levels, source := c.LevelsFor(gw, dev, site, profile)
		agg := c.Input.Agg
		if agg == "" {
			agg = "last"
		}
		window := ""
		if c.Input.Window > 0 {
			window = shortDuration(c.Input.Window.String())
		}
		name := c.Name
		if name == "" {
			name = c.ID
		}
		cn := c.Annotations["summary_cn"]
		if strings.Contains(cn, "{{") {
			cn = ""
		}
		for _, l := range levels {
			if l.Set == nil || !validOp(l.Op) {
				continue
			}
			th := Threshold{Rule: c.ID, Name: name, NameCN: cn, Standard: c.Standard, StandardCN: c.StandardCN, Severity: l.Severity.String(),
				Op: l.Op, Value: *l.Set, Agg: agg, Window: window, Source: source}
			if l.Clear != nil && *l.Clear != *l.Set {
				v := *l.Clear
				th.Clear = &v
			}
			out = append(out, th)
		}
	}
	return out
}

func validOp(op string) bool { return op == "<" || op == "<=" || op == ">" || op == ">=" }

// shortDuration drops Go's zero minutes and seconds: "24h0m0s" → "24h".
func shortDuration(s string) string {
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
