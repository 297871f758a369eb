package rollout

import "github.com/prometheus/client_golang/prometheus"

// metrics are the engine's: rollouts by state and the gateways of the
// unfinished ones by status, read at each scrape; counters of results,
// operators' and the engine's actions, and refused requests.
type metrics struct {
	e                         *Engine
	rollouts, gateways        *prometheus.Desc
	results, actions, refused *prometheus.CounterVec
}

func newMetrics(e *Engine) *metrics {
	return &metrics{e: e,
		rollouts: prometheus.NewDesc("fieldwatch_rollouts", "Rollouts kept by the cloud, by state.", []string{"state"}, nil),
		gateways: prometheus.NewDesc("fieldwatch_rollout_gateways",
			"Gateways of the rollouts not finished (draft, running, paused, halted, rolling_back), by status.", []string{"status"}, nil),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_rollout_gateway_results_total",
			Help: "Gateways' verdicts in rollouts, by kind and result: ok, failed, reverted, revert_failed."}, []string{"kind", "result"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_rollout_actions_total",
			Help: "Rollout actions: create, upload, start, pause, resume, rollback, cancel, and halt (the engine's)."}, []string{"action"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_rollout_refused_total",
			Help: "Rollout requests refused, by reason."}, []string{"reason"})}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.rollouts
	ch <- m.gateways
	m.results.Describe(ch)
	m.actions.Describe(ch)
	m.refused.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	byState, byStatus := map[State]int{}, map[Status]int{}
	m.e.mu.Lock()
	for _, r := range m.e.rollouts {
		byState[r.State]++
		if r.State.holds() || r.State == Halted {
			for _, g := range r.Gateways {
				byStatus[g.Status]++
			}
		}
	}
	m.e.mu.Unlock()
	for _, s := range States {
		ch <- prometheus.MustNewConstMetric(m.rollouts, prometheus.GaugeValue, float64(byState[s]), string(s))
	}
	for _, s := range Statuses {
		ch <- prometheus.MustNewConstMetric(m.gateways, prometheus.GaugeValue, float64(byStatus[s]), string(s))
	}
	m.results.Collect(ch)
	m.actions.Collect(ch)
	m.refused.Collect(ch)
}
