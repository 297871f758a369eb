package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// RunCase runs one of a rule's test cases through a fresh engine holding
// only that rule: points become batches of one gateway ("gw-test") and
// device, judged at their offsets; at every expectation the wall clock is
// set to its offset, the gateway sends its heartbeat (it is alive: what is
// tested is the device), no-data and held events are checked, and the
// rule's alert must be in the expected state (for a nodata rule, the
// built-in DeviceSilent it tunes). The error lists every expectation that
// failed.
func RunCase(r rules.Rule, tc rules.TestCase) error {
	r.Disabled = false // a disabled rule's cases still hold
	p, err := tc.Parse()
	if err != nil {
		return err
	}
	site, dev := or(tc.Site, "site-test"), or(tc.Device, "dev-test")
	now := p.Start
	reg := registry.NewWithClock(func() time.Time { return now })
	heartbeat := func() {
		reg.ObserveState("gw-test", telemetry.State{State: telemetry.StateOnline, Site: site, Time: now,
			Heartbeat: telemetry.Duration(time.Minute),
			Devices:   []telemetry.DeviceState{{ID: dev, Profile: tc.Profile, Interval: telemetry.Duration(time.Minute), Health: "ok"}}}, false)
	}
	heartbeat()
	e, err := New(Options{Rules: []rules.Rule{r}, Registry: reg, Now: func() time.Time { return now },
		GatewayOffline: Builtin{Disabled: true}, DeviceSilent: Builtin{Disabled: true}})
	if err != nil {
		return err
	}
	defer e.Close()
	// A case has no process pauses: the pause watch (a gap between ticks
	// on the monotonic clock) must not see how long this machine took
	// between two expectations, or time could turn blind at random.
	frozen := e.lastTick
	e.mono = func() time.Time { return frozen }
	ruleID := r.ID
	if r.Kind == rules.NoData {
		ruleID = rules.BuiltinDeviceSilent
	}
	ctx := context.Background()
	var fails []string
	check := func(x rules.Expectation) {
		now = p.Start.Add(x.At)
		heartbeat()
		if err := e.Tick(ctx); err != nil {
			fails = append(fails, fmt.Sprintf("%s: %v", x.Text, err))
			return
		}
		got, sev := alert.Inactive, alert.None
		for _, a := range e.Alerts(Filter{State: "all", Rule: ruleID}) {
			got, sev = a.State, a.Severity
		}
		if got != x.State || (x.Severity != alert.None && sev != x.Severity) {
			g := string(got)
			if got == alert.Firing {
				g += " " + sev.String()
			}
			fails = append(fails, fmt.Sprintf("at %v want %s, got %s", x.At, strings.TrimSpace(strings.TrimPrefix(x.Text, strings.Fields(x.Text)[0])), g))
		}
	}
	xi := 0
	for i, pt := range p.Points {
		for xi < len(p.Expect) && p.Expect[xi].At < pt.At {
			check(p.Expect[xi])
			xi++
		}
		now = p.Start.Add(pt.At)
		b := &telemetry.Batch{Gateway: "gw-test", Site: site, FirstSeq: uint64(i + 1)}
		for _, kv := range strings.Fields(tc.Points[i])[1:] {
			if strings.HasPrefix(kv, "@") {
				break
			}
			k, _, _ := strings.Cut(kv, "=")
			b.Readings = append(b.Readings, telemetry.Reading{Device: dev, Metric: k, Value: pt.Values[k], Time: now})
		}
		for _, ev := range pt.Events {
			b.Events = append(b.Events, telemetry.Event{Device: or(ev.Device, dev), Kind: ev.Kind, Key: ev.Key, Time: now,
				Attrs: ev.Attrs, Values: ev.Values})
		}
		reg.Heard(b)
		reg.ObserveBatch(b)
		if err := e.Observe(ctx, b); err != nil {
			return fmt.Errorf("points[%d]: %w", i, err)
		}
	}
	for ; xi < len(p.Expect); xi++ {
		check(p.Expect[xi])
	}
	if len(fails) > 0 {
		return fmt.Errorf("%s", strings.Join(fails, "; "))
	}
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
