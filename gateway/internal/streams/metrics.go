package streams

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the stream devices' Prometheus metrics.
type Metrics struct {
	frames     *prometheus.CounterVec
	errors     *prometheus.CounterVec
	readings   *prometheus.CounterVec
	events     *prometheus.CounterVec
	reconnects *prometheus.CounterVec
	connected  *prometheus.GaugeVec
	sinkErrors prometheus.Counter
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_gateway_stream_frames_total",
			Help: "Frames (sentences, tag reads, rows) accepted from stream devices."}, []string{"device"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_gateway_stream_errors_total",
			Help: "Input refused by stream decoders, by kind (checksum, overlong, garbage, cut, …)."}, []string{"device", "kind"}),
		readings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_gateway_stream_readings_total",
			Help: "Readings from stream devices handed to the buffer."}, []string{"device"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_gateway_stream_events_total",
			Help: "Events (tag reads, drift) from stream devices handed to the buffer."}, []string{"device"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_gateway_stream_reconnects_total",
			Help: "Times a stream device's port or connection failed and was reopened."}, []string{"device"}),
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fieldwatch_gateway_stream_connected",
			Help: "1 while the stream device's port or connection is open."}, []string{"device"}),
		sinkErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_gateway_stream_store_errors_total",
			Help: "Stream outputs that could not be written to the buffer."}),
	}
	reg.MustRegister(m.frames, m.errors, m.readings, m.events, m.reconnects, m.connected, m.sinkErrors)
	return m
}
