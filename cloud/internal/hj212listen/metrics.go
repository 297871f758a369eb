package hj212listen

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/stationserver"
	"github.com/fieldwatch/fieldwatch/protocols/hj212"
)

// Refusal kinds of the listener beyond the codec's and the mapping's.
const (
	KindUnknownMN = "unknown_mn" // MN not in hj212.loggers
	KindWrongPW   = "wrong_pw"   // PW not the logger's
)

// RefusalKinds are every kind fieldwatch_hj212_refused_total counts.
var RefusalKinds = []string{hj212.KindGarbage, hj212.KindHeader, hj212.KindLength, hj212.KindOversize,
	hj212.KindTruncated, hj212.KindCRC, hj212.KindTail, hj212.KindSyntax, hj212.KindField, hj212.KindMissing,
	hj212.KindSplit, KindUnknownMN, KindWrongPW, KindDataTime, KindValue}

// Classes of accepted frames (the label of fieldwatch_hj212_frames_total).
const (
	classRealtime  = "realtime"  // 2011
	classMinute    = "minute"    // 2051
	classHour      = "hour"      // 2061
	classDay       = "day"       // 2031
	classHeartbeat = "heartbeat" // 9015 (HJ 212-2025 as implemented)
	classNotice    = "notice"    // 1013 time calibration request
	classAnswer    = "answer"    // 9011–9014 from the logger
	classOther     = "other"     // any other command: not stored
)

// Metrics are the listener's Prometheus metrics; the connections' and the
// refusals' are stationserver's, named fieldwatch_hj212_….
type Metrics struct {
	server         *stationserver.Metrics
	refused        *stationserver.Refusals
	pendingRefused prometheus.Counter
	frames         *prometheus.CounterVec
	duplicates     prometheus.Counter
	storeErrors    prometheus.Counter
	readings       prometheus.Counter
	unmapped       prometheus.Counter
	answers        *prometheus.CounterVec
	history        *prometheus.CounterVec
}

// NewMetrics registers the listener's metrics on reg; refusals are
// logged (throttled) on log.
func NewMetrics(reg prometheus.Registerer, log *slog.Logger) *Metrics {
	m := &Metrics{
		server: stationserver.NewMetrics(reg, "hj212"),
		refused: stationserver.NewRefusals(reg, "hj212",
			"HJ 212 input refused, by kind: the codec's (garbage, header, length, oversize, truncated, crc, tail, syntax, field, missing, split), unknown_mn, wrong_pw, datatime, value.",
			RefusalKinds, log.With("component", "hj212")),
		pendingRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_hj212_pending_refused_total",
			Help: "HJ 212 connections closed at once: hj212.max_pending (or max_pending_per_address from one address) were open without a good frame yet."}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_hj212_frames_total",
			Help: "HJ 212 frames taken (data frames: once stored) from authenticated data loggers, by class: realtime, minute, hour, day, heartbeat, notice, answer, other."},
			[]string{"class"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_hj212_duplicates_total",
			Help: "HJ 212 data frames already stored (a re-sent frame): answered again, not written or judged twice."}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_hj212_store_errors_total",
			Help: "HJ 212 data frames that could not be stored; not answered, so the logger sends them again."}),
		readings: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_hj212_readings_total",
			Help: "Readings stored from HJ 212 data frames (duplicates not counted)."}),
		unmapped: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_hj212_unmapped_values_total",
			Help: "Values of factor codes without a metric in the configuration or the built-in table, stored under the code itself."}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_hj212_answers_total",
			Help: "Answers sent to data loggers, by CN (9013 notice, 9014 data)."}, []string{"cn"}),
		history: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_hj212_history_requests_total",
			Help: "History requests (补传) sent after a logger's outage, by CN (2051 minute, 2061 hour)."}, []string{"cn"}),
	}
	reg.MustRegister(m.pendingRefused, m.frames, m.duplicates, m.storeErrors, m.readings, m.unmapped, m.answers, m.history)
	for _, c := range []string{classRealtime, classMinute, classHour, classDay, classHeartbeat, classNotice, classAnswer, classOther} {
		m.frames.WithLabelValues(c)
	}
	return m
}
