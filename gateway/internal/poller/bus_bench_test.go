package poller

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
	"github.com/fieldwatch/fieldwatch/test/sim"
)

// rs485Line is a simulated 9600-baud line with n units, unit i answering
// with the map of the i-th shipped profile (round robin), and a poller bus
// over it. extra units (dead) are added after them.
func rs485Line(tb testing.TB, n int, mod func(*Options)) (*Bus, *sim.RTUServer, float64) {
	tb.Helper()
	set, err := profiles.Builtin()
	if err != nil {
		tb.Fatal(err)
	}
	models := set.ModbusModels()
	mode := serialport.Mode{Baud: 9600}
	bus := sim.NewBus()
	var devs []Device
	bound := 0.0 // seconds: bytes on the wire × 10 bits / baud, plus the 3.5-character gaps
	t35 := 3.5 * 10 / 9600.0
	for i := 0; i < n; i++ {
		p, _ := set.Get(models[i%len(models)])
		bus.AddUnit(uint8(i+1), &sim.ProfileDevice{Profile: p, Seed: int64(i)}, 9600)
		devs = append(devs, Device{ID: fmt.Sprintf("u%02d", i+1), Profile: p, Unit: uint8(i + 1), Interval: time.Second})
		for _, r := range modbus.Plan(p.Modbus.Fields, p.Modbus.MaxGap, 0) {
			bound += float64(8+5+2*int(r.Count))*10/9600 + 2*t35
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := sim.ServeRTU(ctx, bus, mode)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cancel(); srv.Wait() })
	// The line's timeout is a minute, so a live unit never times out on a
	// loaded machine; a dead unit's silence is answered at once (silent).
	rtu := modbus.NewRTU(srv.Path, modbus.RTUOptions{Mode: mode, Timeout: time.Minute})
	o := Options{Name: "rs485", Client: silent{Client: rtu, dead: srv.Dead},
		Devices: devs, Retries: 1, Log: slog.New(slog.DiscardHandler), Metrics: NewMetrics(prometheus.NewRegistry())}
	if mod != nil {
		mod(&o)
	}
	return NewBus(o), srv, bound
}

// BenchmarkPollCycle20Units polls 20 units with the shipped profiles' maps on
// a simulated 9600-baud RS485 line (the simulator delivers every reply when
// its last byte would arrive) and compares one cycle with the wire-time
// lower bound: every byte on the wire at 10 bits per character, plus the
// 3.5-character silences before each reply and each request.
func BenchmarkPollCycle20Units(b *testing.B) {
	bus, srv, bound := rs485Line(b, 20, nil)
	ctx := context.Background()
	for _, d := range bus.devices { // warm up: open the port
		bus.ReadOnce(ctx, d.ID)
	}
	b.ResetTimer()
	for b.Loop() {
		for _, d := range bus.devices {
			if _, st, _ := bus.ReadOnce(ctx, d.ID); st.Health != HealthOK {
				b.Fatalf("%s: %s", d.ID, st.LastError)
			}
		}
	}
	cycle := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(cycle*1000, "cycle_ms")
	b.ReportMetric(bound*1000, "wire_bound_ms")
	b.ReportMetric(cycle/bound, "x_bound")
	b.ReportMetric(float64(bus.Requests()), "requests/cycle")
	if n := srv.Collisions(); n != 0 {
		b.Fatalf("%d collisions", n)
	}
}

// BenchmarkDeadUnit runs the scheduler for 20 seconds with 20 live units
// polled every second and a 21st that never answers, quarantined after 3
// failed polls with a 2 s backoff doubling to 8 s. It reports the timeouts
// the dead unit cost before its quarantine (3 polls × 2 attempts) and per
// backoff period after, and how many polls of the live units were missed.
func BenchmarkDeadUnit(b *testing.B) {
	for b.Loop() {
		bus, srv, _ := rs485Line(b, 21, func(o *Options) {
			o.Quarantine = Quarantine{After: 3, Backoff: 2 * time.Second, MaxBackoff: 8 * time.Second}
		})
		srv.SetDead(21, true)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		bus.Run(ctx)
		cancel()
		var dead DeviceStatus
		var overruns, ok uint64
		for _, s := range bus.Status() {
			if s.Unit == 21 {
				dead = s
				continue
			}
			ok += s.Stats.Requests - s.Stats.Timeouts
		}
		for _, d := range bus.devices[:20] {
			overruns += uint64(counter(bus.m.overruns.WithLabelValues("rs485", d.ID)))
		}
		b.ReportMetric(float64(dead.Stats.Timeouts-dead.Stats.Probes), "dead_timeouts_before_quarantine")
		b.ReportMetric(float64(dead.Stats.Probes)/float64(dead.Stats.Quarantines), "dead_timeouts/backoff_period")
		b.ReportMetric(float64(overruns), "live_polls_missed")
		b.ReportMetric(float64(ok), "live_requests_ok")
	}
}

// silent stands in for the line's timeout for the units dead reports: it
// answers what the client answers once its timeout passes, ErrTimeout, at
// once, closing the connection first when closes is set as the TCP
// transport does after a timeout. The real timeout can then be long: that
// a live unit answers within it, or a dead one is given up on, does not
// depend on how fast a loaded machine runs the simulator. (The transports'
// own timeouts are tested in drivers/modbus.)
type silent struct {
	modbus.Client
	dead   func(unit uint8) bool
	closes bool
}

func (s silent) ReadRegisters(ctx context.Context, unit uint8, table modbus.Table, addr, count uint16) ([]uint16, error) {
	if !s.dead(unit) {
		return s.Client.ReadRegisters(ctx, unit, table, addr, count)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closes {
		_ = s.Client.Close()
	}
	return nil, fmt.Errorf("%w from unit %d (dead in the test)", modbus.ErrTimeout, unit)
}
