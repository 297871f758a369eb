package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

const stateConfig = `gateway: {id: gw-state, site: s1, labels: {county: laoshan, kind: farm}}
uplink: {brokers: ["%s"], state_interval: 1h, batch_delay: 50ms}
buffer: {dir: %s, fsync: "off", max_bytes: 64MiB}
http: {listen: ""}
buses:
  - name: dtu-1
    type: tcp
    address: %s
    timeout: 200ms
    retries: 0
    quarantine: {after: 2, backoff: 500ms, max_backoff: 1s}
    devices:
      - {id: soil-1, profile: renke/rs-ecth-n01, unit: 1, interval: 200ms}
      - {id: soil-2, profile: renke/rs-ecth-n01, unit: 2, interval: 200ms}
`

// TestStateAndQuarantine runs the gateway in-process against a simulated
// Modbus TCP server. With state_interval an hour, every state message the
// test sees after the connect's was published because a health changed.
// The state names each device's bus, port and last read, and the gateway's
// heartbeat; a unit that dies is quarantined (one event, and a state that
// says so), and released when it answers again (one event, and a state).
func TestStateAndQuarantine(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	srv := sim.NewServer(nil)
	env := &sim.Environment{}
	srv.AddUnit(1, &sim.SoilProbe{Env: env})
	srv.AddUnit(2, &sim.SoilProbe{Env: env, Probe: 1})
	simAddr := sim.Listen(t, srv)
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(stateConfig, mosq.URL, filepath.Join(dir, "buf"), simAddr)), 0o644); err != nil {
		t.Fatal(err)
	}

	var (
		mu     sync.Mutex
		state  telemetry.State
		states int
		events = map[string]telemetry.Event{} // by identity: batches unacked here are sent again
	)
	obs := testenv.MQTTClient(t, mosq.URL, "observer")
	obs.Subscribe(telemetry.StateTopic("gw-state"), 1, func(_ mqtt.Client, m mqtt.Message) {
		s, err := telemetry.DecodeState(m.Payload())
		if err != nil {
			t.Errorf("state refused: %v", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		state = s
		states++
	}).Wait()
	defs := &telemetry.MemoryContexts{}
	obs.Subscribe(telemetry.UpTopic("gw-state"), 1, func(_ mqtt.Client, m mqtt.Message) {
		b, def, err := telemetry.DecodeAny(context.Background(), m.Payload(), "gw-state", defs)
		if def != nil {
			defs.Put(def)
		}
		if err != nil {
			t.Errorf("undecodable batch: %v", err)
			return
		}
		mu.Lock()
		for _, e := range b.Events {
			events[fmt.Sprintf("%s/%s/%s", e.Device, e.Kind, e.Time.Format(time.RFC3339Nano))] = e
		}
		mu.Unlock()
		// Acknowledged as the cloud does, so the uplink keeps sending.
		ack, _ := telemetry.EncodeAck(telemetry.Ack{Stream: b.Stream, First: b.FirstSeq, Last: b.LastSeq()})
		obs.Publish(telemetry.AckTopic("gw-state"), 1, false, ack)
	}).Wait()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{ConfigPath: path, Log: slog.New(slog.DiscardHandler)}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	device := func(id string) (telemetry.DeviceState, telemetry.State) {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range state.Devices {
			if d.ID == id {
				return d, state
			}
		}
		return telemetry.DeviceState{}, state
	}
	health := func(id, want string) func() bool {
		return func() bool { d, _ := device(id); return d.Health == want }
	}
	quarantineEvents := func() []telemetry.Event {
		mu.Lock()
		defer mu.Unlock()
		var out []telemetry.Event
		for _, e := range events {
			if e.Kind == telemetry.EventQuarantine {
				out = append(out, e)
			}
		}
		return out
	}

	testenv.Eventually(t, "a state with both devices ok", wait, func() bool {
		return health("soil-1", "ok")() && health("soil-2", "ok")()
	})
	d, s := device("soil-1")
	if d.Bus != "dtu-1" || d.Port != simAddr || d.LastRead.IsZero() || d.LastRead.After(s.Time) ||
		time.Duration(s.Heartbeat) != time.Hour {
		t.Errorf("state %+v, device %+v; want bus dtu-1, port %s, a last read before the state's time, heartbeat 1h",
			s, d, simAddr)
	}
	// What the inventory shows.
	if s.Arch != runtime.GOARCH && !strings.HasPrefix(s.Arch, "armv") || s.Uptime < 0 || s.BufferMaxBytes != 64<<20 ||
		s.BufferBytes <= 0 || s.Clock == nil || s.Clock.Quality == "" ||
		len(s.Labels) != 2 || s.Labels["county"] != "laoshan" || s.Labels["kind"] != "farm" {
		t.Errorf("state %+v: want arch, uptime, buffer bytes of 64 MiB, clock and labels", s)
	}

	srv.SetDead(2, true)
	testenv.Eventually(t, "a state with soil-2 quarantined", wait, health("soil-2", "quarantined"))
	testenv.Eventually(t, "its quarantine event", wait, func() bool { return len(quarantineEvents()) == 1 })
	d, _ = device("soil-2")
	e := quarantineEvents()[0]
	if e.Device != "soil-2" || e.Attrs["state"] != "quarantined" || e.Attrs["bus"] != "dtu-1" || e.Attrs["error"] == "" ||
		e.Values["failures"] != 2 || e.Values["backoff_s"] != 0.5 || d.Error == "" {
		t.Errorf("event %+v, device %+v", e, d)
	}

	srv.SetDead(2, false)
	testenv.Eventually(t, "a state with soil-2 ok again", wait, health("soil-2", "ok"))
	testenv.Eventually(t, "its release event", wait, func() bool { return len(quarantineEvents()) == 2 })
	for _, e := range quarantineEvents() {
		if e.Device != "soil-2" || (e.Attrs["state"] != "quarantined" && e.Attrs["state"] != "released") {
			t.Errorf("event %+v", e)
		}
	}
	mu.Lock()
	n := states
	mu.Unlock()
	t.Logf("%d state messages", n)
	// connect, both ok, soil-2 failing and quarantined, ok again, with
	// changes less than 2 s apart together: at least three, at most five
	// (the retained one of the connect, perhaps seen twice); far fewer than
	// the polls.
	if n < 3 || n > 6 {
		t.Errorf("%d state messages; want one per health change, debounced", n)
	}
}

// TestClockState: the quality always, the kernel's offset and error only
// for an NTP-disciplined clock that the kernel says is synchronised.
func TestClockState(t *testing.T) {
	kernel := func(ok bool) func() (time.Duration, time.Duration, bool) {
		return func() (time.Duration, time.Duration, bool) {
			return -1500 * time.Microsecond, 250 * time.Millisecond, ok
		}
	}
	for _, tc := range []struct {
		q        telemetry.ClockQuality
		ok       bool
		want     string
		withOffs bool
	}{
		{telemetry.ClockNTP, true, "ntp", true},
		{telemetry.ClockNTP, false, "ntp", false},
		{telemetry.ClockRTC, true, "rtc", false},
		{telemetry.ClockGPS, true, "gps", false},
		{telemetry.ClockUnsynced, true, "unsynced", false},
	} {
		c := clockState(tc.q, kernel(tc.ok))
		if c == nil || c.Quality != tc.want || (c.OffsetS != nil) != tc.withOffs || (c.MaxErrorS != nil) != tc.withOffs {
			t.Errorf("%v, kernel ok %v: %+v", tc.q, tc.ok, c)
			continue
		}
		if tc.withOffs && (*c.OffsetS != -0.0015 || *c.MaxErrorS != 0.25) {
			t.Errorf("%v: offset %v, max error %v", tc.q, *c.OffsetS, *c.MaxErrorS)
		}
	}
	if c := clockState(telemetry.ClockUnknown, kernel(true)); c != nil {
		t.Errorf("unknown quality reported: %+v", c)
	}
}
