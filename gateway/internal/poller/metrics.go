package poller

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the pollers' Prometheus metrics, shared by all buses.
type Metrics struct {
	polls          *prometheus.CounterVec
	readings       *prometheus.CounterVec
	badValues      *prometheus.CounterVec
	errors         *prometheus.CounterVec
	overruns       *prometheus.CounterVec
	exceptions     *prometheus.CounterVec
	quarantined    *prometheus.GaugeVec
	requestSeconds *prometheus.HistogramVec
	sinkErrors     prometheus.Counter
}

// NewMetrics registers the pollers' metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldwatch_gateway_polls_total",
			Help: "Device polls by result: ok, partial (some requests failed), error, skipped (quarantined).",
		}, []string{"bus", "device", "result"}),
		readings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldwatch_gateway_readings_total", Help: "Readings acquired and handed to the buffer.",
		}, []string{"bus", "device"}),
		badValues: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldwatch_gateway_bad_values_total",
			Help: "Times a metric turned bad (out of range, sentinel, NaN); the reading is kept with quality bad.",
		}, []string{"bus", "device"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldwatch_gateway_modbus_errors_total",
			Help: "Failed Modbus requests by kind: timeout, short_frame, crc, wrong_unit, wrong_function, malformed, exception, connection.",
		}, []string{"bus", "device", "kind"}),
		exceptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldwatch_gateway_modbus_exceptions_total", Help: "Modbus exception replies by code.",
		}, []string{"bus", "device", "code"}),
		quarantined: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fieldwatch_gateway_device_quarantined",
			Help: "1 while a silent device is quarantined (polled once per backoff period).",
		}, []string{"bus", "device"}),
		overruns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldwatch_gateway_poll_overruns_total", Help: "Polls skipped because the bus fell behind.",
		}, []string{"bus", "device"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fieldwatch_gateway_modbus_request_seconds",
			Help:    "Time from sending a Modbus request to its reply or failure.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"bus"}),
		sinkErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldwatch_gateway_buffer_append_errors_total",
			Help: "Polls whose readings, or quarantine events, could not be written to the buffer (disk full or failing).",
		}),
	}
	reg.MustRegister(m.polls, m.readings, m.badValues, m.errors, m.exceptions, m.quarantined, m.overruns,
		m.requestSeconds, m.sinkErrors)
	return m
}
