package uplink

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the uplink's Prometheus metrics.
type Metrics struct {
	connects    prometheus.Counter
	batches     prometheus.Counter
	readings    prometheus.Counter
	bytes       prometheus.Counter
	resends     prometheus.Counter
	ackTimeouts prometheus.Counter
	acks        prometheus.Counter
	badAcks     prometheus.Counter
	acksDropped prometheus.Counter
	unsendable  prometheus.Counter
	ackSeconds  prometheus.Histogram
}

// NewMetrics registers the uplink's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_gateway_uplink_" + name, Help: help})
	}
	m := &Metrics{
		connects:    c("connects_total", "Connections to the broker established."),
		batches:     c("batches_sent_total", "Batches published (first sends and resends)."),
		readings:    c("readings_sent_total", "Readings published (first sends and resends)."),
		bytes:       c("bytes_sent_total", "Encoded batch bytes published, MQTT framing excluded."),
		resends:     c("batches_resent_total", "Batches sent again after an ack timeout or a reconnect."),
		ackTimeouts: c("ack_timeouts_total", "Times the oldest batch waited longer than ack_timeout."),
		acks:        c("acks_total", "Acks received for this gateway's stream."),
		badAcks:     c("bad_acks_total", "Acks refused: malformed or for another stream."),
		acksDropped: c("acks_dropped_total", "Acks dropped because the uplink was busy (the batch is resent)."),
		unsendable:  c("unsendable_readings_total", "Readings skipped because they could not be encoded (a bug)."),
		ackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fieldwatch_gateway_uplink_ack_seconds",
			Help:    "Time from publishing a batch to the cloud's ack that it is stored.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}),
	}
	reg.MustRegister(m.connects, m.batches, m.readings, m.bytes, m.resends, m.ackTimeouts, m.acks, m.badAcks,
		m.acksDropped, m.unsendable, m.ackSeconds)
	return m
}
