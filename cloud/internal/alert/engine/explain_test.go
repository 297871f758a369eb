package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

func TestRender(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"DO {{ $value }} mg/L at {{ $labels.site }}", "DO 3.1 mg/L at pond-7"},
		{`DO {{ printf "%.2f" $value }}`, "DO 3.10"},
		{"no template", "no template"},
	} {
		tm, err := rules.ParseText(c.text)
		if err != nil {
			t.Fatal(err)
		}
		if got := render(tm, c.text, map[string]string{"site": "pond-7"}, 3.0999999999999996); got != c.want {
			t.Errorf("%q rendered %q, want %q", c.text, got, c.want)
		}
	}
}

// TestForecastExplains: a forecast alert says where the series is, where
// it heads, when, and how fast, in the metric's unit and in hours.
func TestForecastExplains(t *testing.T) {
	rs, err := rules.Parse("f.yaml", []byte(`rules:
  - id: do_forecast
    kind: forecast
    standard: test
    input: {metric: do}
    forecast: {window: 2h, buckets: 12, min_points: 6, toward: {op: "<", value: 3}}
    levels: [{severity: blue, op: "<=", set: 3, clear: 4}]
`))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	e, err := New(Options{Rules: rs, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for m := 0; m <= 180; m += 10 { // 6 mg/L falling 0.5 an hour: 3 at 6 h
		now = t0.Add(time.Duration(m) * time.Minute)
		b := &telemetry.Batch{Gateway: "gw", Site: "pond", Readings: []telemetry.Reading{{Device: "p", Metric: "do",
			Unit: "mg/L", Value: 6 - 0.5*float64(m)/60, Time: now}}}
		if err := e.Observe(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	as := e.Alerts(Filter{State: "firing"})
	if len(as) != 1 {
		t.Fatalf("%d firing", len(as))
	}
	n := as[0].Annotations
	want := map[string]string{"value": "3", "unit": "h", "value_text": "4.5 mg/L", "target": "< 3 mg/L",
		"threshold": "expected within 3 h", "trend": "-0.5 mg/L/h", "expected_in": "3 h", "expected_at": "2026-06-01T06:00:00Z"}
	for k, v := range want {
		if n[k] != v {
			t.Errorf("%s = %q, want %q", k, n[k], v)
		}
	}
	if !strings.Contains(n["description"], "expected to reach < 3 mg/L in 3 h") {
		t.Errorf("description %q", n["description"])
	}
}

// TestStandardInBothLanguages: the Chinese description and annotation name
// the rule's standard in Chinese when the rule gives it, the English ones
// in English; a rule without standard_cn falls back to its standard.
func TestStandardInBothLanguages(t *testing.T) {
	for _, c := range []struct{ name, cn, wantCN string }{
		{"translated", `standard_cn: "GB 3838-2002 表 1"`, "依据 GB 3838-2002 表 1。"},
		{"untranslated", "", "依据 GB 3838-2002 table 1。"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs, err := rules.Parse("s.yaml", []byte(`rules:
  - id: do_low
    kind: threshold
    standard: "GB 3838-2002 table 1"
    `+c.cn+`
    input: {metric: do}
    levels: [{severity: yellow, op: "<", set: 5, clear: 5.5}]
`))
			if err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
			e, err := New(Options{Rules: rs, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			b := &telemetry.Batch{Gateway: "gw", Site: "pond", Readings: []telemetry.Reading{{Device: "p", Metric: "do",
				Unit: "mg/L", Value: 4, Time: now}}}
			if err := e.Observe(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			as := e.Alerts(Filter{State: "firing"})
			if len(as) != 1 {
				t.Fatalf("%d firing", len(as))
			}
			n := as[0].Annotations
			if !strings.Contains(n["description"], "Rule do_low, GB 3838-2002 table 1.") {
				t.Errorf("description %q", n["description"])
			}
			if !strings.Contains(n["description_cn"], c.wantCN) {
				t.Errorf("description_cn %q, want it to contain %q", n["description_cn"], c.wantCN)
			}
			if got, want := n["standard_cn"], strings.TrimSuffix(strings.TrimPrefix(c.wantCN, "依据 "), "。"); c.cn != "" && got != want {
				t.Errorf("standard_cn %q, want %q", got, want)
			}
			th := e.Thresholds("gw", "pond", "p", "do")
			if len(th) != 1 || th[0].Standard != "GB 3838-2002 table 1" || (c.cn != "" && th[0].StandardCN != "GB 3838-2002 表 1") {
				t.Errorf("thresholds %+v", th)
			}
		})
	}
}
