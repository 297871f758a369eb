package poller

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type collector struct {
	mu sync.Mutex
	rs []telemetry.Reading
	ch chan struct{}
}

func (c *collector) sink(rs []telemetry.Reading) error {
	c.mu.Lock()
	c.rs = append(c.rs, rs...)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) byDevice(id string) []telemetry.Reading {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []telemetry.Reading
	for _, r := range c.rs {
		if r.Device == id {
			out = append(out, r)
		}
	}
	return out
}

// startSim serves the simulator on a free loopback port; served records
// every read it answered.
func startSim(t *testing.T, units map[uint8]sim.Device) (addr string, served func() []sim.Read) {
	t.Helper()
	srv := sim.NewServer(nil)
	for u, d := range units {
		srv.AddUnit(u, d)
	}
	var mu sync.Mutex
	var reads []sim.Read
	srv.OnRead = func(r sim.Read) {
		mu.Lock()
		reads = append(reads, r)
		mu.Unlock()
	}
	return sim.Listen(t, srv), func() []sim.Read {
		mu.Lock()
		defer mu.Unlock()
		return append([]sim.Read(nil), reads...)
	}
}

func profile(t *testing.T, model string) *profiles.Profile {
	t.Helper()
	set, err := profiles.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := set.Get(model)
	if !ok {
		t.Fatalf("no profile %s", model)
	}
	return p
}

// TestPollsDecodeWhatWasServed polls a soil probe, an air sensor and a unit
// that never answers on one TCP endpoint, and checks every reading against
// the registers the simulator served.
func TestPollsDecodeWhatWasServed(t *testing.T) {
	env := &sim.Environment{Seed: 7}
	addr, served := startSim(t, map[uint8]sim.Device{
		1:  &sim.SoilProbe{Env: env},
		10: &sim.AirSensor{Env: env},
	})
	reg := prometheus.NewRegistry()
	c := &collector{ch: make(chan struct{}, 1)}
	bus := NewBus(Options{
		Name: "tcp1",
		// Unit 5 never answers: silent gives it the timeout at once and
		// closes the connection as the TCP client does, so the neighbours
		// must reconnect; the real timeout is long enough that they never
		// time out on a loaded machine.
		Client: silent{Client: modbus.NewTCP(addr, time.Minute), dead: func(u uint8) bool { return u == 5 }, closes: true},
		Devices: []Device{
			{ID: "soil-1", Profile: profile(t, "renke/rs-ecth-n01"), Unit: 1, Interval: 20 * time.Millisecond},
			{ID: "ghost", Profile: profile(t, "renke/rs-ecth-n01"), Unit: 5, Interval: 20 * time.Millisecond},
			{ID: "air-1", Profile: profile(t, "renke/rs-ws-n01-8"), Unit: 10, Interval: 20 * time.Millisecond},
		},
		Sink:    c.sink,
		Clock:   func() telemetry.ClockQuality { return telemetry.ClockNTP },
		Log:     slog.New(slog.DiscardHandler),
		Metrics: NewMetrics(reg),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	deadline := time.After(20 * time.Second)
	for len(c.byDevice("soil-1")) < 3*5 || len(c.byDevice("air-1")) < 2*5 {
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("too few readings: soil %d air %d", len(c.byDevice("soil-1")), len(c.byDevice("air-1")))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Each served read maps to the readings of one poll, in order.
	var soilReads, airReads []sim.Read
	for _, r := range served() {
		switch r.Unit {
		case 1:
			soilReads = append(soilReads, r)
		case 10:
			airReads = append(airReads, r)
		default:
			t.Fatalf("served unit %d", r.Unit)
		}
	}
	// A read served while cancel came has no readings (the poll is
	// dropped on cancel): at most one per device, the last.
	soil, air := c.byDevice("soil-1"), c.byDevice("air-1")
	if n := len(soil) / 3; len(soil)%3 != 0 || n > len(soilReads) || n < len(soilReads)-1 {
		t.Fatalf("%d soil readings for %d served reads", len(soil), len(soilReads))
	}
	if n := len(air) / 2; len(air)%2 != 0 || n > len(airReads) || n < len(airReads)-1 {
		t.Fatalf("%d air readings for %d served reads", len(air), len(airReads))
	}
	soilReads, airReads = soilReads[:len(soil)/3], airReads[:len(air)/2]
	for i, r := range soilReads {
		want := map[string]float64{
			"soil_moisture":    float64(r.Words[0]) / 10,
			"soil_temperature": float64(int16(r.Words[1])) / 10,
			"soil_ec":          float64(r.Words[2]),
		}
		for _, got := range soil[3*i : 3*i+3] {
			if got.Value != want[got.Metric] || got.Quality != telemetry.Good || got.Clock != telemetry.ClockNTP {
				t.Fatalf("poll %d: %s = %v (%v), served %v", i, got.Metric, got.Value, got.Quality, want[got.Metric])
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, r := range airReads {
		if air[2*i].Value != float64(r.Words[0])/10 || air[2*i+1].Value != float64(int16(r.Words[1]))/10 {
			t.Fatalf("air poll %d: got %v %v, served %v", i, air[2*i].Value, air[2*i+1].Value, r.Words)
		}
	}

	st := map[string]DeviceStatus{}
	for _, s := range bus.Status() {
		st[s.ID] = s
	}
	if st["soil-1"].Health != HealthOK || st["ghost"].Health == HealthOK || st["ghost"].Failures == 0 {
		t.Fatalf("health: %+v", st)
	}
	if n := testutil.ToFloat64(bus.m.errors.WithLabelValues("tcp1", "ghost", "timeout")); n == 0 {
		t.Fatal("timeouts of the dead unit were not counted")
	}
	if n := testutil.ToFloat64(bus.m.polls.WithLabelValues("tcp1", "soil-1", "error")); n != 0 {
		t.Fatalf("soil-1 had %v failed polls: a dead unit must not break its neighbours", n)
	}
}

// TestExceptionIsCounted polls a unit whose map lacks a register the
// profile asks for; the device answers with exception 2.
func TestExceptionIsCounted(t *testing.T) {
	env := &sim.Environment{Seed: 1}
	addr, _ := startSim(t, map[uint8]sim.Device{3: &sim.AirSensor{Env: env}})
	reg := prometheus.NewRegistry()
	c := &collector{ch: make(chan struct{}, 1)}
	bus := NewBus(Options{
		Name:    "b",
		Client:  modbus.NewTCP(addr, time.Second),
		Devices: []Device{{ID: "wrong-profile", Profile: profile(t, "renke/rs-ecth-n01"), Unit: 3, Interval: 10 * time.Millisecond}},
		Sink:    c.sink,
		Log:     slog.New(slog.DiscardHandler),
		Metrics: NewMetrics(reg),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	counter := bus.m.errors.WithLabelValues("b", "wrong-profile", "exception")
	for i := 0; testutil.ToFloat64(counter) < 3; i++ {
		if i > 2000 {
			t.Fatal("exceptions not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	s := bus.Status()[0]
	if s.Health != HealthFailing || s.LastError == "" {
		t.Fatalf("status %+v", s)
	}
	if len(c.byDevice("wrong-profile")) != 0 {
		t.Fatal("readings from a failed poll")
	}
}

// TestReadWhileRunning: Read polls a device on the running bus's own
// goroutine, between its scheduled polls (an hour apart here), and returns
// its readings; an unknown device is an error, a done context gives up.
func TestReadWhileRunning(t *testing.T) {
	addr, _ := startSim(t, map[uint8]sim.Device{1: &sim.SoilProbe{Env: &sim.Environment{Seed: 7}}})
	c := &collector{ch: make(chan struct{}, 1)}
	bus := NewBus(Options{Name: "tcp1", Client: modbus.NewTCP(addr, time.Minute),
		Devices: []Device{{ID: "soil-1", Profile: profile(t, "renke/rs-ecth-n01"), Unit: 1, Interval: time.Hour}},
		Sink:    c.sink, Log: slog.New(slog.DiscardHandler), Metrics: NewMetrics(prometheus.NewRegistry())})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for range 2 { // the first may wait behind the scheduled poll at start
		rs, st, err := bus.Read(context.Background(), "soil-1")
		if err != nil || len(rs) == 0 || st.Health != HealthOK {
			t.Fatalf("Read = %d readings, %+v, %v", len(rs), st.Health, err)
		}
	}
	if len(c.byDevice("soil-1")) == 0 {
		t.Errorf("the reads' readings were not stored: %d", len(c.byDevice("soil-1")))
	}
	if _, _, err := bus.Read(context.Background(), "ghost"); err == nil {
		t.Error("Read of an unknown device succeeded")
	}
	if !bus.HasDevice("soil-1") || bus.HasDevice("ghost") {
		t.Error("HasDevice")
	}
}
