package uplink

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the uplink's Prometheus metrics.
type Metrics struct {
	connects        prometheus.Counter
	connectFailures prometheus.Counter
	stuck           prometheus.Counter
	reconnectWaits  prometheus.Histogram
	batches         *prometheus.CounterVec
	readings        *prometheus.CounterVec
	bytes           prometheus.Counter
	resends         prometheus.Counter
	ackTimeouts     prometheus.Counter
	acks            prometheus.Counter
	badAcks         prometheus.Counter
	acksDropped     prometheus.Counter
	unsendable      prometheus.Counter
	resyncs         prometheus.Counter
	restamped       prometheus.Counter
	clockHold       prometheus.Gauge
	ackSeconds      prometheus.Histogram
	resend          resendMetrics
	refusals        prometheus.Counter
	onlineNotices   prometheus.Counter
}

// NewMetrics registers the uplink's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_gateway_uplink_" + name, Help: help})
	}
	m := &Metrics{
		connects:        c("connects_total", "Connections to the broker established."),
		connectFailures: c("connect_failures_total", "Connection attempts that reached no broker."),
		stuck:           c("stuck_connections_total", "Connections replaced because publishes stalled for publish_timeout."),
		reconnectWaits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fieldwatch_gateway_uplink_reconnect_wait_seconds",
			Help:    "Jittered waits before reconnecting.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 9),
		}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_gateway_uplink_batches_sent_total",
			Help: "Batches published (first sends and resends), by kind: live or backlog."}, []string{"kind"}),
		readings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_gateway_uplink_readings_sent_total",
			Help: "Items published (first sends and resends), by kind: live or backlog."}, []string{"kind"}),
		bytes:       c("bytes_sent_total", "Encoded batch bytes published, MQTT framing excluded."),
		resends:     c("batches_resent_total", "Batches sent again after an ack timeout or a reconnect."),
		ackTimeouts: c("ack_timeouts_total", "Times the oldest batch waited longer than ack_timeout."),
		acks:        c("acks_total", "Acks received for this gateway's stream."),
		badAcks:     c("bad_acks_total", "Acks refused: malformed or for another stream."),
		acksDropped: c("acks_dropped_total", "Acks dropped because the uplink was busy (the batch is resent)."),
		unsendable:  c("unsendable_readings_total", "Items skipped because they could not be encoded (a bug)."),
		resyncs:     c("resyncs_total", "Times the cloud did not know the compact context and it was defined again."),
		restamped:   c("restamped_total", "Items stamped while the wall clock was unsynced, sent with their true time once it was set (a resent batch counts again)."),
		clockHold: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fieldwatch_gateway_uplink_clock_hold",
			Help: "1 while items stamped before the wall clock was set are held back for clock_wait, to be re-stamped."}),
		refusals:      c("refusals_total", "Batches the cloud could not store and asked for again after a hint, instead of the ack timeout."),
		onlineNotices: c("online_notices_total", "Times the cloud said it had subscribed again (after its restart or a broker's), so what was in flight was sent again at once."),
		ackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fieldwatch_gateway_uplink_ack_seconds",
			Help:    "Time from publishing a batch to the cloud's ack that it is stored.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}),
	}
	m.resend = newResendMetrics(c)
	reg.MustRegister(m.resend.collectors()...)
	reg.MustRegister(m.connects, m.connectFailures, m.stuck, m.reconnectWaits, m.batches, m.readings, m.bytes, m.resends,
		m.ackTimeouts, m.acks, m.badAcks, m.acksDropped, m.unsendable, m.resyncs, m.restamped, m.clockHold, m.ackSeconds,
		m.refusals, m.onlineNotices)
	return m
}
