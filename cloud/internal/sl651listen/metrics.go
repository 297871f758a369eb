package sl651listen

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	frames        *prometheus.CounterVec
	readings      prometheus.Counter
	duplicates    prometheus.Counter
	dropped       prometheus.Counter
	confirmations prometheus.Counter
	closed        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_sl651_frames_total",
			Help: "SL 651 frames taken, by function (2F keep-alive, 30 test, 31 uniform interval, 32 timed, 33 added, 34 hourly); sent-again frames included."},
			[]string{"function"}),
		readings: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_sl651_readings_total",
			Help: "Readings made of SL 651 frames and stored (a frame sent again is not counted twice)."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_sl651_duplicates_total",
			Help: "SL 651 frames already stored (sent again): confirmed again, not stored or judged twice."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_sl651_values_dropped_total",
			Help: "SL 651 values of elements mapped to \"-\" (sl651.stations[].elements): not stored."}),
		confirmations: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_sl651_confirmations_total",
			Help: "Confirmations (M2) sent to stations."}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_sl651_closed_total",
			Help: "SL 651 connections ended, by reason: eof (the station left), idle (no whole frame within sl651.idle_timeout), refusals (too many refused frames in a row), write (a confirmation could not be sent), shutdown."},
			[]string{"reason"}),
	}
	reg.MustRegister(m.frames, m.readings, m.duplicates, m.dropped, m.confirmations, m.closed)
	for _, f := range []string{"2F", "30", "31", "32", "33", "34"} {
		m.frames.WithLabelValues(f)
	}
	for _, r := range []string{"eof", "idle", "refusals", "write", "shutdown"} {
		m.closed.WithLabelValues(r)
	}
	return m
}
