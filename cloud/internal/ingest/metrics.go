package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingestor's Prometheus metrics.
type Metrics struct {
	batches      prometheus.Counter
	readings     prometheus.Counter
	events       prometheus.Counter
	acks         prometheus.Counter
	rejected     *prometheus.CounterVec
	states       *prometheus.CounterVec
	storeErrors  prometheus.Counter
	duplicates   prometheus.Counter
	overlap      prometheus.Counter
	backlog      prometheus.Counter
	resyncs      prometheus.Counter
	storeSeconds prometheus.Histogram
	// future counts items dropped for being stamped too far ahead;
	// devicesRefused device ids the registry did not track (its cap).
	future         prometheus.Counter
	devicesRefused prometheus.Counter
	// groups is how many batches each group commit wrote; unwritable the
	// readings a store could not represent (left out of their batch).
	groups     prometheus.Histogram
	unwritable prometheus.Counter
	restored   restoredMetrics
	// Recovery (recovery.go): failed group writes tried again, refusals
	// with a retry hint, online notices.
	storeRetries  prometheus.Counter
	refusals      prometheus.Counter
	onlineNotices prometheus.Counter
}

// NewMetrics registers the ingestor's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_batches_total",
			Help: "Batches stored and acknowledged."}),
		readings: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_readings_total",
			Help: "Readings stored (replays included)."}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_events_total",
			Help: "Events stored (tag reads, drift; replays and updates included)."}),
		acks: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_acks_total",
			Help: "Acks published to gateways."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_ingest_rejected_total",
			Help: "Messages refused, by reason: malformed, too_large, flooding, gateway_mismatch, unknown_context, bad_state, topic, not_gateway."}, []string{"reason"}),
		states: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_ingest_states_total",
			Help: "Gateway state messages received, by state."}, []string{"state"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_store_errors_total",
			Help: "Batches the store refused; they were not acknowledged and will be resent."}),
		overlap: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_overlap_items_total",
			Help: "Items of resent batches already stored or in hand in another batch, left out so no point is written twice."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_duplicates_total",
			Help: "Batches already stored (a replay): acknowledged again without writing or evaluating them twice."}),
		backlog: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_backlog_items_total",
			Help: "Items stored from backlog batches (acquired while the gateway could not send)."}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_resyncs_total",
			Help: "Resync requests sent: compact batches whose context this cloud did not know."}),
		storeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fieldwatch_ingest_store_write_seconds",
			Help: "Time to write one group of batches to the store.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
		future: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_future_items_total",
			Help: "Items (readings, events) dropped for being stamped more than ingest.max_future ahead of the cloud's clock; the rest of their batch was stored and acknowledged."}),
		devicesRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_devices_refused_total",
			Help: "Device ids (in state messages and batches) the registry did not track: their gateway already had ingest.max_devices."}),
		groups: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fieldwatch_ingest_group_batches",
			Help: "Batches written by one group commit.", Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		unwritable: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_unwritable_readings_total",
			Help: "Readings the store cannot represent (a time outside years 1678–2262): left out, the rest of their batch stored and acknowledged."}),
		storeRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_store_retries_total",
			Help: "Failed group writes held and tried again (the store was failing)."}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_refusals_total",
			Help: "Refusals sent: batches not stored, with a hint of when to send them again (gateways that accept it)."}),
		onlineNotices: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_online_notices_total",
			Help: "Online notices sent: gateways told that the cloud has subscribed again and what they sent meanwhile may be lost."}),
	}
	m.restored = newRestoredMetrics()
	reg.MustRegister(m.restored.collectors()...)
	reg.MustRegister(m.storeRetries, m.refusals, m.onlineNotices, m.groups, m.unwritable, m.batches, m.readings, m.events, m.acks, m.rejected, m.states, m.storeErrors, m.duplicates, m.overlap, m.backlog,
		m.resyncs, m.storeSeconds, m.future, m.devicesRefused)
	// Every reason appears from the start, so a dashboard can rate() it.
	for _, r := range []string{"malformed", "too_large", "flooding", "gateway_mismatch", "unknown_context", "bad_state", "bad_reply", "topic", "not_gateway"} {
		m.rejected.WithLabelValues(r)
	}
	return m
}
