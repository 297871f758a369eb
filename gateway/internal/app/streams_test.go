package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

const streamsConfig = `gateway: {id: gw-coast, site: coast}
uplink: {brokers: ["%[1]s"], batch_delay: 100ms}
buffer: {dir: %[2]s, fsync: "off"}
http: {listen: "127.0.0.1:0"}
streams:
  - id: buoy-1
    profile: generic/met-buoy-gmx500-awac
    port: %[3]s
    baud: 9600
    mooring: {lat: 60.0845, lon: 23.5391, radius_m: 100}
mqtt_sources:
  - id: chirpstack
    profile: chirpstack/soil-sensor
    brokers: ["%[1]s"]
    topic: application/+/device/+/event/up
    qos: 1
`

// TestStreamsAndSources runs the gateway in-process with a buoy on a pty
// and a ChirpStack MQTT source: their readings and the buoy's drift event
// go up in batches, /status and /metrics show both, and the state message
// describes the buoy, its mooring included; a payload that is not JSON is counted.
func TestStreamsAndSources(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	dir := t.TempDir()
	// The buoy lies 300 m east of its mooring.
	buoy := &sim.BuoyStream{Env: sim.Environment{Seed: 1}, Lat: 60.0845, Lon: 23.5391, Met: "XDR", Seed: 2,
		Drift: func(time.Time) (float64, float64) { return 0, 300 }}
	var mu sync.Mutex
	port := sim.NewStreamPort(filepath.Join(dir, "buoy"), serialport.Mode{Baud: 9600}, time.Second,
		func(now time.Time) []byte { mu.Lock(); defer mu.Unlock(); return buoy.Next(now) }, nil)
	if err := port.Plug(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer port.Unplug(nil)
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(streamsConfig, mosq.URL, filepath.Join(dir, "buf"), port.Link)), 0o644); err != nil {
		t.Fatal(err)
	}

	var (
		bmu     sync.Mutex
		devices = map[string]map[string]float64{} // device → metric → last value
		events  []telemetry.Event
		state   telemetry.State
	)
	defs := &telemetry.MemoryContexts{}
	obs := testenv.MQTTClient(t, mosq.URL, "observer")
	obs.Subscribe(telemetry.UpTopic("gw-coast"), 1, func(_ mqtt.Client, m mqtt.Message) {
		b, def, err := telemetry.DecodeAny(context.Background(), m.Payload(), "gw-coast", defs)
		if def != nil {
			defs.Put(def)
		}
		if err != nil {
			t.Errorf("undecodable batch: %v", err)
			return
		}
		bmu.Lock()
		defer bmu.Unlock()
		for _, r := range b.Readings {
			if devices[r.Device] == nil {
				devices[r.Device] = map[string]float64{}
			}
			devices[r.Device][r.Metric] = r.Value
		}
		events = append(events, b.Events...)
	}).Wait()
	obs.Subscribe(telemetry.StateTopic("gw-coast"), 1, func(_ mqtt.Client, m mqtt.Message) {
		bmu.Lock()
		defer bmu.Unlock()
		json.Unmarshal(m.Payload(), &state)
	}).Wait()

	base := runGateway(t, path)
	status := func() Status { return statusOf(t, base) }
	testenv.Eventually(t, "source subscribed", wait, func() bool {
		s := status()
		return len(s.Sources) == 1 && s.Sources[0].Connected
	})
	uplink, err := os.ReadFile("../../../drivers/mqttsrc/testdata/chirpstack/lse01-up.json")
	if err != nil {
		t.Fatal(err)
	}
	pub := testenv.MQTTClient(t, mosq.URL, "chirpstack")
	pub.Publish("application/app1/device/a84041000181c0e1/event/up", 1, false, uplink).Wait()
	pub.Publish("application/app1/device/a84041000181c0e1/event/up", 1, false, []byte("{not json")).Wait()

	testenv.Eventually(t, "buoy and soil readings and the drift event upstream", wait, func() bool {
		bmu.Lock()
		defer bmu.Unlock()
		return devices["a84041000181c0e1"]["soil_moisture"] == 31.2 && devices["buoy-1"]["wind_speed"] > 0 && len(events) > 0
	})
	bmu.Lock()
	if e := events[0]; e.Device != "buoy-1" || e.Kind != telemetry.EventDrift || e.Attrs["state"] != "drifting" {
		t.Errorf("event %+v", e)
	}
	bmu.Unlock()

	s := status()
	if len(s.Streams) != 1 || s.Streams[0].Health != "ok" || s.Streams[0].Where != port.Link+" 9600 baud" || s.Streams[0].Frames == 0 {
		t.Errorf("streams status %+v", s.Streams)
	}
	src := s.Sources[0]
	if src.Received != 2 || src.Mapped != 1 || src.Errors["invalid_json"] != 1 {
		t.Errorf("source status %+v", src)
	}
	for name, want := range map[string]string{
		`fieldwatch_gateway_mqtt_source_errors_total{kind="invalid_json",source="chirpstack"}`: "1",
		`fieldwatch_gateway_mqtt_source_messages_total{result="mapped",source="chirpstack"}`:   "1",
		`fieldwatch_gateway_mqtt_source_connected{source="chirpstack"}`:                        "1",
		`fieldwatch_gateway_stream_connected{device="buoy-1"}`:                                 "1",
		`fieldwatch_gateway_stream_events_total{device="buoy-1"}`:                              "1",
	} {
		if got := metric(t, base, name); got != want {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
	testenv.Eventually(t, "state describes the buoy", wait, func() bool {
		bmu.Lock()
		defer bmu.Unlock()
		return len(state.Devices) == 1
	})
	bmu.Lock()
	if d := state.Devices[0]; d.ID != "buoy-1" || time.Duration(d.Interval) != 30*time.Second || d.Quiet || d.Health == "failing" {
		t.Errorf("state device %+v", d)
	} else if m := d.Mooring; m == nil || *m != (telemetry.Mooring{Lat: 60.0845, Lon: 23.5391, RadiusM: 100}) {
		t.Errorf("state device's mooring %+v, want the configured one", m)
	}
	bmu.Unlock()
}
