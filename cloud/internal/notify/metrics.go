package notify

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the notifier's Prometheus metrics.
type metrics struct {
	sent       *prometheus.CounterVec
	failed     *prometheus.CounterVec
	dropped    *prometheus.CounterVec
	refused    *prometheus.CounterVec
	latency    prometheus.Histogram
	collectors []prometheus.Collector
}

// Reasons a notification is dropped, and an alert refused.
const (
	dropRejected = "rejected" // the receiver answered 4xx (not 408/429)
	dropInvalid  = "invalid"  // the request could not be built
)

func newMetrics(reg prometheus.Registerer, receivers []*receiver, now func() time.Time) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_notify_sent_total",
			Help: "Notifications delivered (2xx, or PUBACK), by receiver."}, []string{"receiver"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_notify_failed_attempts_total",
			Help: "Delivery attempts that failed and will be retried, by receiver."}, []string{"receiver"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_notify_dropped_total",
			Help: "Notifications given up: permanent failures (HTTP 4xx other than 408/429), by receiver and reason."},
			[]string{"receiver", "reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_notify_refused_total",
			Help: "Alert states refused by Update, by reason: invalid, stale (older seq than recorded)."},
			[]string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fieldwatch_notify_latency_seconds",
			Help:    "Time from the Update that caused a notification to its delivery (group waits included).",
			Buckets: prometheus.ExponentialBuckets(0.005, 3, 12)}),
	}
	m.collectors = []prometheus.Collector{m.sent, m.failed, m.dropped, m.refused, m.latency}
	for _, r := range []string{"invalid", "stale"} {
		m.refused.WithLabelValues(r)
	}
	for _, rc := range receivers {
		rc := rc
		m.sent.WithLabelValues(rc.name)
		m.failed.WithLabelValues(rc.name)
		for _, r := range []string{dropRejected, dropInvalid} {
			m.dropped.WithLabelValues(rc.name, r)
		}
		labels := prometheus.Labels{"receiver": rc.name}
		m.collectors = append(m.collectors,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldwatch_notify_queue", ConstLabels: labels,
				Help: "Notifications waiting for delivery, by receiver."},
				func() float64 { return float64(rc.status(now()).Queue) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldwatch_notify_oldest_seconds", ConstLabels: labels,
				Help: "Age of the oldest notification waiting for delivery, by receiver (0 when none)."},
				func() float64 { return rc.status(now()).Oldest.Seconds() }))
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, d := range m.collectors[:i] {
				reg.Unregister(d)
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.collectors {
		reg.Unregister(c)
	}
}
