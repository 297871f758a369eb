package poller

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func counter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// TestDeadUnitIsQuarantined runs three live units and a dead one on a
// simulated RS485 line for four seconds. The dead unit costs 2 polls × 2
// attempts before its quarantine, then at most one attempt per backoff
// period (1 s, then 2 s): never more than 4 + 3 requests. The live units
// stay healthy. The bound is on counts, not on speed.
func TestDeadUnitIsQuarantined(t *testing.T) {
	bus, srv, _ := rs485Line(t, 4, func(o *Options) {
		o.Retries = 1
		o.Quarantine = Quarantine{After: 2, Backoff: time.Second, MaxBackoff: 8 * time.Second}
		for i := range o.Devices {
			o.Devices[i].Interval = 200 * time.Millisecond
		}
	})
	srv.SetDead(4, true)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	bus.Run(ctx)
	for _, s := range bus.Status() {
		if s.Unit != 4 {
			if s.Health != HealthOK || s.Stats.Requests == 0 {
				t.Errorf("live unit %d: %s after %d requests (%s)", s.Unit, s.Health, s.Stats.Requests, s.LastError)
			}
			continue
		}
		if s.Health != HealthQuarantined || s.QuarantinedUntil.IsZero() {
			t.Errorf("dead unit: %s", s.Health)
		}
		if s.Stats.Requests > 7 || s.Stats.Timeouts != s.Stats.Requests {
			t.Errorf("dead unit: %d requests, %d timeouts; want at most 4 before quarantine + 3 probes", s.Stats.Requests, s.Stats.Timeouts)
		}
		if s.Stats.SkippedPolls == 0 {
			t.Errorf("no polls were skipped while quarantined")
		}
	}
	if got := counter(bus.m.quarantined.WithLabelValues("rs485", "u04")); got != 1 {
		t.Errorf("quarantine gauge %v", got)
	}
	// The unit comes back: the next probe finds it and lifts the quarantine.
	srv.SetDead(4, false)
	for _, d := range bus.devices {
		if d.Unit == 4 {
			d.status.QuarantinedUntil = time.Now() // let the probe happen now
		}
	}
	if _, st, _ := bus.ReadOnce(context.Background(), "u04"); st.Health != HealthOK {
		t.Fatalf("after the unit answers again: %s (%s)", st.Health, st.LastError)
	}
}
