package poller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/telemetry"
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

// TestQuarantineEvents polls a unit on a simulated RS485 line through
// death and recovery: one event when it is quarantined, none while it
// stays so, one when it answers again; and the health hook hears every
// change of health, and only those.
func TestQuarantineEvents(t *testing.T) {
	var (
		events  []telemetry.Event
		changes int
	)
	bus, srv, _ := rs485Line(t, 2, func(o *Options) {
		o.Retries = 1
		o.Quarantine = Quarantine{After: 2, Backoff: time.Second, MaxBackoff: 8 * time.Second}
		o.Clock = func() telemetry.ClockQuality { return telemetry.ClockNTP }
		o.Events = func(es []telemetry.Event) error { events = append(events, es...); return nil }
		o.Changed = func() { changes++ }
	})
	ctx := context.Background()
	if _, st, _ := bus.ReadOnce(ctx, "u01"); st.Health != HealthOK || changes != 1 {
		t.Fatalf("healthy unit: %s, %d health changes; want ok, 1", st.Health, changes)
	}
	steps := []struct {
		name    string
		dead    bool
		health  string
		event   string // state of the quarantine event the poll gives, if any
		changed bool
	}{
		{"first silent poll", true, HealthFailing, "", true},
		{"second silent poll: quarantined", true, HealthQuarantined, "quarantined", true},
		{"silent probe: backoff doubles", true, HealthQuarantined, "", false},
		{"the unit answers: released", false, HealthOK, "released", true},
		{"answers again", false, HealthOK, "", false},
	}
	for _, step := range steps {
		srv.SetDead(2, step.dead)
		n, c := len(events), changes
		_, st, _ := bus.ReadOnce(ctx, "u02")
		if st.Health != step.health || (changes > c) != step.changed {
			t.Fatalf("%s: %s, health hook called %d times; want %s, changed %v", step.name, st.Health, changes-c,
				step.health, step.changed)
		}
		got := events[n:]
		if step.event == "" {
			if len(got) != 0 {
				t.Fatalf("%s: events %+v; want none", step.name, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Fatalf("%s: events %+v; want one, %s", step.name, got, step.event)
		}
		e := got[0]
		if err := e.Validate(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if e.Device != "u02" || e.Kind != telemetry.EventQuarantine || e.Attrs["state"] != step.event ||
			e.Attrs["bus"] != "rs485" || e.Clock != telemetry.ClockNTP || e.Time.IsZero() {
			t.Errorf("%s: event %+v", step.name, e)
		}
		switch step.event {
		case "quarantined":
			if !strings.Contains(e.Attrs["error"], "no reply from unit 2") || e.Values["failures"] != 2 || e.Values["backoff_s"] != 1 {
				t.Errorf("%s: event %+v; want the last error, 2 failures, 1 s backoff", step.name, e)
			}
		case "released":
			if _, ok := e.Attrs["error"]; ok || e.Values["failures"] != 3 || e.Values["backoff_s"] != 2 {
				t.Errorf("%s: event %+v; want no error, 3 failures, the 2 s backoff it was in", step.name, e)
			}
		}
	}
}

// TestEventsSinkFailureCounted: an event the buffer cannot take is counted
// like readings it cannot take.
func TestEventsSinkFailureCounted(t *testing.T) {
	bus, srv, _ := rs485Line(t, 1, func(o *Options) {
		o.Quarantine = Quarantine{After: 1, Backoff: time.Second, MaxBackoff: time.Second}
		o.Events = func([]telemetry.Event) error { return errors.New("disk full") }
	})
	srv.SetDead(1, true)
	if _, st, _ := bus.ReadOnce(context.Background(), "u01"); st.Health != HealthQuarantined {
		t.Fatalf("health %s", st.Health)
	}
	if n := counter(bus.m.sinkErrors); n != 1 {
		t.Fatalf("append errors %v, want 1", n)
	}
}
