package engine

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
)

// Metrics are the engine's Prometheus metrics. A nil *Metrics measures
// nothing.
type Metrics struct {
	readings    prometheus.Counter
	skipped     *prometheus.CounterVec
	transitions *prometheus.CounterVec
	publishes   *prometheus.CounterVec
	sinkErrors  prometheus.Counter
	evalSeconds prometheus.Histogram
	active      *prometheus.GaugeVec
}

// NewMetrics registers the engine's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		readings: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_alert_readings_total",
			Help: "Readings handed to the early-warning engine."}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_alert_skipped_total",
			Help: "Readings not judged live, by reason: bad_quality (bad or not finite), no_humidity (THI without humidity), late (older than the series' newest: judged apart as backfill)."}, []string{"reason"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_alert_transitions_total",
			Help: "Alert state changes, by new state and severity; backfilled ones were found in late data and page no one."}, []string{"state", "severity", "backfilled"}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_alert_published_total",
			Help: "Alert changes handed to the notifier, by state."}, []string{"state"}),
		sinkErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_alert_sink_errors_total",
			Help: "Times the notifier could not take alert changes; they are retried."}),
		evalSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fieldwatch_alert_eval_seconds",
			Help: "Time to judge one batch, saving included.", Buckets: prometheus.ExponentialBuckets(0.0001, 3, 10)}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fieldwatch_alerts_active",
			Help: "Alerts firing now, by severity."}, []string{"severity"}),
	}
	reg.MustRegister(m.readings, m.skipped, m.transitions, m.publishes, m.sinkErrors, m.evalSeconds, m.active)
	for _, r := range []string{"bad_quality", "no_humidity", "late"} {
		m.skipped.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) skip(reason string) {
	if m != nil {
		m.skipped.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) observed(n int) {
	if m != nil {
		m.readings.Add(float64(n))
	}
}

func (m *Metrics) transition(s alert.State, sev alert.Severity, backfilled bool) {
	if m != nil {
		b := "false"
		if backfilled {
			b = "true"
		}
		m.transitions.WithLabelValues(string(s), sev.String(), b).Inc()
	}
}

func (m *Metrics) published(s alert.State) {
	if m != nil {
		m.publishes.WithLabelValues(string(s)).Inc()
	}
}

func (m *Metrics) sinkError() {
	if m != nil {
		m.sinkErrors.Inc()
	}
}

func (m *Metrics) evalTime(d time.Duration) {
	if m != nil {
		m.evalSeconds.Observe(d.Seconds())
	}
}

func (m *Metrics) setActive(counts map[alert.Severity]int) {
	if m == nil {
		return
	}
	for _, s := range []alert.Severity{alert.Blue, alert.Yellow, alert.Orange, alert.Red} {
		m.active.WithLabelValues(s.String()).Set(float64(counts[s]))
	}
}
