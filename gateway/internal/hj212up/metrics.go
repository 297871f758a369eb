package hj212up

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
)

// Metrics are the HJ 212 uplinks' Prometheus metrics, labelled by uplink
// name.
type Metrics struct {
	connected    *prometheus.GaugeVec
	connects     *prometheus.CounterVec
	connectFails *prometheus.CounterVec
	unusable     *prometheus.CounterVec
	frames       *prometheus.CounterVec
	resends      *prometheus.CounterVec
	confirmed    *prometheus.CounterVec
	ackTimeouts  *prometheus.CounterVec
	readings     *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	refused      *prometheus.CounterVec
	requests     *prometheus.CounterVec
	mu           sync.Mutex
	consumers    map[string]*buffer.Consumer
	pendingDesc  *prometheus.Desc
	droppedDesc  *prometheus.Desc
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_gateway_hj212_" + name, Help: help},
			append([]string{"uplink"}, labels...))
	}
	m := &Metrics{
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fieldwatch_gateway_hj212_connected",
			Help: "1 while the HJ 212 uplink is connected to its platform."}, []string{"uplink"}),
		connects:     cv("connects_total", "Connections to the platform established."),
		connectFails: cv("connect_failures_total", "Dials that failed."),
		unusable:     cv("links_unusable_total", "Connections given up: a frame unanswered after its retries, or the platform closed it."),
		frames:       cv("frames_sent_total", "Frames (packets) written, first sends and resends, by CN.", "cn"),
		resends:      cv("frames_resent_total", "Frames sent again after OverTime without a 9014."),
		confirmed:    cv("frames_confirmed_total", "Frames confirmed (a 9014 for each part, or written when ack is off)."),
		ackTimeouts:  cv("ack_timeouts_total", "Times a frame waited OverTime for its 9014."),
		readings:     cv("readings_sent_total", "Readings confirmed by the platform (each once)."),
		skipped:      cv("readings_skipped_total", "Mapped readings not sent, by reason: unit (not the factor's unit), unsynced (no true time), late (its period was sent), paused (real-time data stopped by the platform).", "reason"),
		refused:      cv("refused_frames_total", "Frames from the platform refused by the codec, by kind.", "kind"),
		requests:     cv("requests_total", "Platform requests received, by CN and result: done, rejected, bad_pw, bad_mn.", "cn", "result"),
		consumers:    map[string]*buffer.Consumer{},
		pendingDesc: prometheus.NewDesc("fieldwatch_gateway_hj212_pending_items",
			"Items in the buffer the uplink has not yet had confirmed.", []string{"uplink"}, nil),
		droppedDesc: prometheus.NewDesc("fieldwatch_gateway_hj212_dropped_items",
			"Items the buffer's budget dropped or refused before the uplink had them confirmed, since the buffer opened.",
			[]string{"uplink"}, nil),
	}
	reg.MustRegister(m.connected, m.connects, m.connectFails, m.unusable, m.frames, m.resends, m.confirmed, m.ackTimeouts,
		m.readings, m.skipped, m.refused, m.requests, (*consumerCollector)(m))
	return m
}

// track makes the consumer's levels visible as the uplink's; nil forgets.
func (m *Metrics) track(name string, c *buffer.Consumer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c == nil {
		delete(m.consumers, name)
		return
	}
	m.consumers[name] = c
}

type consumerCollector Metrics

func (c *consumerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pendingDesc
	ch <- c.droppedDesc
}

func (c *consumerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, con := range c.consumers {
		s := con.Stats()
		ch <- prometheus.MustNewConstMetric(c.pendingDesc, prometheus.GaugeValue, float64(s.Pending), name)
		ch <- prometheus.MustNewConstMetric(c.droppedDesc, prometheus.GaugeValue, float64(s.Dropped), name)
	}
}
