package uplink

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// settableClock stands in for clock.Timeline, whose wall clock a test
// cannot set: once known, a 1970 time t is re-stamped as t + shift.
type settableClock struct {
	known atomic.Bool
	shift time.Duration
}

func (c *settableClock) Known() bool { return c.known.Load() }
func (c *settableClock) Restamp(t time.Time) (time.Time, bool) {
	if !c.known.Load() || t.Year() != 1970 {
		return t, false
	}
	return t.Add(c.shift), true
}

var epoch1970 = time.Unix(3600, 0).UTC()

// appendUnsynced appends n readings stamped in 1970 with values from v.
func appendUnsynced(t *testing.T, r interface {
	Append([]telemetry.Reading) (uint64, error)
}, v, n int) {
	t.Helper()
	rs := make([]telemetry.Reading, n)
	for i := range rs {
		rs[i] = telemetry.Reading{Device: "d", Metric: "m", Value: float64(v + i), Clock: telemetry.ClockUnsynced,
			Time: epoch1970.Add(time.Duration(v+i) * time.Second)}
	}
	if _, err := r.Append(rs); err != nil {
		t.Fatal(err)
	}
}

// TestClockHoldAndRestamp: a gateway that booted in 1970 holds back what
// it stamped this run (an earlier run's items go at once: their monotonic
// clock is gone), then, once the clock is set, sends them re-stamped.
func TestClockHoldAndRestamp(t *testing.T) {
	m := testenv.StartMosquitto(t)
	c := newCloud(t, m.URL)
	clk := &settableClock{shift: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC).Sub(epoch1970)}
	r := startUplink(t, m.URL, func(u *config.Uplink) { u.ClockWait = time.Hour }, func(o *Options) {
		appendUnsynced(t, o.Buffer, 0, 5) // the previous run's
		o.Clock, o.RunFirst = clk, o.Buffer.Next()
	})
	appendUnsynced(t, r.buf, 5, 10) // this run's
	testenv.Eventually(t, "the previous run's items delivered, this run's held", wait, func() bool {
		got, _ := c.count()
		return got == 5 && testutil.ToFloat64(r.up.m.clockHold) == 1 && r.up.Status().ClockHold
	})
	clk.known.Store(true)
	testenv.Eventually(t, "held items delivered", wait, func() bool { return r.buf.Stats().Readings == 0 })
	c.mu.Lock()
	defer c.mu.Unlock()
	for seq := uint64(1); seq <= 15; seq++ {
		got, v := c.got[seq], int(seq-1)
		want, q := epoch1970.Add(time.Duration(v)*time.Second), telemetry.ClockUnsynced
		if seq > 5 {
			want, q = want.Add(clk.shift), telemetry.ClockRestamped
		}
		if !got.Time.Equal(want) || got.Clock != q || got.Value != float64(v) {
			t.Errorf("seq %d: %v %v value %v; want %v %v value %d", seq, got.Time, got.Clock, got.Value, want, q, v)
		}
	}
	if n := testutil.ToFloat64(r.up.m.restamped); n < 10 {
		t.Errorf("restamped counter %v, want ≥ 10", n)
	}
	if h := testutil.ToFloat64(r.up.m.clockHold); h != 0 {
		t.Errorf("clock_hold gauge %v after the clock was set", h)
	}
}

// TestClockNeverSet: after clock_wait with the clock still unsynced, the
// held items go as they are, flagged unsynced.
func TestClockNeverSet(t *testing.T) {
	m := testenv.StartMosquitto(t)
	c := newCloud(t, m.URL)
	clk := &settableClock{}
	r := startUplink(t, m.URL, func(u *config.Uplink) { u.ClockWait = 200 * time.Millisecond }, func(o *Options) {
		o.Clock, o.RunFirst = clk, o.Buffer.Next()
	})
	appendUnsynced(t, r.buf, 0, 10)
	testenv.Eventually(t, "items delivered after clock_wait", wait, func() bool { return r.buf.Stats().Readings == 0 })
	c.mu.Lock()
	defer c.mu.Unlock()
	for seq := uint64(1); seq <= 10; seq++ {
		got := c.got[seq]
		if got.Clock != telemetry.ClockUnsynced || !got.Time.Equal(epoch1970.Add(time.Duration(seq-1)*time.Second)) {
			t.Errorf("seq %d: %v %v; want its 1970 time, flagged unsynced", seq, got.Time, got.Clock)
		}
	}
	if n := testutil.ToFloat64(r.up.m.restamped); n != 0 {
		t.Errorf("restamped %v items with no clock", n)
	}
}
