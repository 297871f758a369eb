package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// benchRules writes 50 rules over ten metrics: per metric three
// thresholds (one with for/clear_for, one on a 5-minute maximum), a windowed
// mean and a rate of change.
func benchRules() string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for m := 0; m < 10; m++ {
		fmt.Fprintf(&b, `  - {id: t%[1]d_a, kind: threshold, standard: bench, input: {metric: m%[1]d}, levels: [{severity: yellow, op: ">", set: 90, clear: 85}, {severity: red, op: ">", set: 95}]}
  - {id: t%[1]d_b, kind: threshold, standard: bench, input: {metric: m%[1]d}, for: 5m, clear_for: 5m, levels: [{severity: blue, op: "<", set: 5, clear: 8}]}
  - {id: t%[1]d_c, kind: threshold, standard: bench, input: {metric: m%[1]d, agg: max, window: 5m}, levels: [{severity: orange, op: ">=", set: 99.5}]}
  - {id: t%[1]d_d, kind: threshold, standard: bench, input: {metric: m%[1]d, agg: mean, window: 10m}, levels: [{severity: yellow, op: ">", set: 80}]}
  - {id: t%[1]d_e, kind: rate, standard: bench, input: {metric: m%[1]d}, change: {window: 30m, direction: rise}, levels: [{severity: yellow, op: ">=", set: 60}]}
`, m)
	}
	return b.String()
}

// forecastRule adds a forecast on m0: one series in ten (10,000) keeps a
// trend window of 24 five-minute buckets and is fitted (Theil–Sen and
// Mann–Kendall over 23 points) each time a bucket closes.
const forecastRule = `  - {id: f0, kind: forecast, standard: bench, input: {metric: m0}, forecast: {window: 2h, buckets: 24, min_points: 8, toward: {op: ">=", value: 99}}, levels: [{severity: blue, op: "<=", set: 2}]}
`

// BenchmarkEvaluate judges readings of 100,000 series (10,000 devices × 10
// metrics) against 50 rules, in batches of 500 as the ingestor hands them,
// state saved to SQLite as in production; with forecast, 10 % of the
// series also carry a forecast rule.
func BenchmarkEvaluate(b *testing.B) {
	b.Run("rules=50", func(b *testing.B) { benchEvaluate(b, benchRules(), 0, time.Minute) })
	// Five minutes a pass: every reading of a forecast series closes a
	// bucket and is fitted, the costliest case.
	b.Run("rules=50+forecast=10pct", func(b *testing.B) { benchEvaluate(b, benchRules()+forecastRule, 10_000, 5*time.Minute) })
}

func benchEvaluate(b *testing.B, ruleYAML string, forecastSeries int, step time.Duration) {
	rs, err := rules.Parse("bench.yaml", []byte(ruleYAML))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	e, err := New(Options{Path: filepath.Join(b.TempDir(), "alerts.db"), Rules: rs, Now: func() time.Time { return now },
		Sink: &recorder{}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	const devices, metrics, batch = 10_000, 10, 500
	devs := make([]string, devices)
	mets := make([]string, metrics)
	for i := range devs {
		devs[i] = fmt.Sprintf("dev%05d", i)
	}
	for i := range mets {
		mets[i] = fmt.Sprintf("m%d", i)
	}
	rb := &telemetry.Batch{Gateway: "gw", Site: "s", Readings: make([]telemetry.Reading, batch)}
	ctx := context.Background()
	n := 0
	next := func() {
		for i := range rb.Readings {
			series := n % (devices * metrics)
			if series == 0 {
				now = now.Add(step)
			}
			// Calm values; one reading in 2,000 crosses a level.
			v := 40 + float64((n*7919)%20)
			if n%2000 == 0 {
				v = 97
			}
			rb.Readings[i] = telemetry.Reading{Device: devs[series/metrics], Metric: mets[series%metrics], Value: v, Time: now}
			n++
		}
	}
	// One pass creates every series; measured passes judge them.
	for n < devices*metrics {
		next()
		if err := e.Observe(ctx, rb); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		next()
		if err := e.Observe(ctx, rb); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// The result checks itself: every rule × series exists, and every
	// reading of a forecast series after its first closed a bucket and was
	// fitted.
	if want := devices*metrics*5 + forecastSeries; len(e.series) != want {
		b.Fatalf("%d series, want %d", len(e.series), want)
	}
	if passes := n / (devices * metrics); e.fits < forecastSeries*(passes-1) {
		b.Fatalf("%d fits in %d passes of %d forecast series", e.fits, passes, forecastSeries)
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "readings/s")
	b.ReportMetric(float64(len(e.series)), "series")
	b.ReportMetric(float64(e.fits), "fits")
}
