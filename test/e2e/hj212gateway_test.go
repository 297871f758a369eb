package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/hj212test"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

const hj212GatewayConfig = `gateway: {id: env-e2e, clock: ntp}
uplink: {brokers: [%[1]s], codec: rows, batch_delay: 200ms}
buffer: {dir: %[2]s, fsync: always}
http: {listen: %[3]s}
buses:
  - name: rs485
    type: tcp
    address: %[4]s
    devices:
      - {id: probe-1, profile: renke/rs-ecth-n01, interval: 2s}
hj212_uplinks:
  - address: %[5]s
    mn: "010000A8900016F000169DC0"
    pw: "123456"
    st: "21"
    factors: {soil_temperature: w01010}
    ack_timeout: 2s
    retries: 1
    reconnect_max: 1s
`

// truth is what the gateway published over MQTT: every soil temperature
// it acquired, by acquisition time (MQTT resends repeat them).
type truth struct {
	mu     sync.Mutex
	values map[time.Time]float64
	added  chan time.Time
}

// TestHJ212Outage runs the gateway binary with a Modbus probe, Mosquitto
// and an HJ 212 platform that drops every connection at first; the gateway
// is killed (SIGKILL) and started again on the same buffer while the
// platform is still down, then the platform comes back. Every temperature
// the gateway published over MQTT reaches the platform exactly once, with
// its DataTime (Beijing time, to the second) and value (w01010, N3.1), and
// the platform gets nothing else.
func TestHJ212Outage(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	srv := sim.NewServer(nil)
	srv.AddUnit(1, &sim.SoilProbe{Env: &sim.Environment{}})
	simAddr := sim.Listen(t, srv)
	plat := hj212test.Start(t, hj212test.ModeDown)
	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := filepath.Join(dir, "gateway.yaml")
	body := fmt.Sprintf(hj212GatewayConfig, mosq.URL, filepath.Join(dir, "buf"), httpAddr, simAddr, plat.Addr())
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	tr := &truth{values: map[time.Time]float64{}, added: make(chan time.Time, 10000)}
	c := testenv.MQTTClient(t, mosq.URL, "e2e-hj212-watch")
	if tok := c.Subscribe(telemetry.UpTopic("env-e2e"), 1, func(_ mqtt.Client, m mqtt.Message) {
		b, err := telemetry.Decode(m.Payload())
		if err != nil {
			t.Errorf("batch: %v", err)
			return
		}
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for _, r := range b.Readings {
			if r.Metric != "soil_temperature" {
				continue
			}
			if _, seen := tr.values[r.Time]; !seen {
				tr.values[r.Time] = r.Value
				tr.added <- r.Time
			}
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	// waitReadings waits for n more readings published and returns the
	// time of the last.
	waitReadings := func(n int) time.Time {
		t.Helper()
		limit := time.NewTimer(60 * time.Second)
		defer limit.Stop()
		var last time.Time
		for range n {
			select {
			case last = <-tr.added:
			case <-limit.C:
				t.Fatalf("fewer than %d readings published", n)
			}
		}
		return last
	}
	waitConns := func(n int) {
		t.Helper()
		limit := time.NewTimer(60 * time.Second)
		defer limit.Stop()
		for range n {
			select {
			case <-plat.Conns:
			case <-limit.C:
				t.Fatalf("the gateway did not dial the platform %d times", n)
			}
		}
	}

	gw := start(t, "fieldwatch-gateway", "run", "-c", cfg)
	waitHealthy(t, httpAddr)
	waitReadings(3)
	waitConns(2) // dropped, dialled again
	gw.Stop(t, syscall.SIGKILL)
	gw = start(t, "fieldwatch-gateway", "run", "-c", cfg)
	waitHealthy(t, httpAddr)
	waitConns(1) // still down after the restart
	plat.SetMode(hj212test.ModeAck)
	cut := waitReadings(3) // acquired after the platform came back

	// Frames go in buffer order, one at a time: once the frame of the cut
	// has arrived, every earlier one has.
	want := hj212.FormatTime(cut, hj212.Beijing)
	got := map[string][]string{} // DataTime → values
	limit := time.NewTimer(60 * time.Second)
	defer limit.Stop()
	for got[want] == nil {
		select {
		case f := <-plat.Frames:
			dt, _ := f.CP.Get("DataTime")
			v, _ := f.CP.Get("w01010-Rtd")
			if f.CN != "2011" || f.MN != "010000A8900016F000169DC0" {
				t.Fatalf("frame %+v", f)
			}
			got[dt] = append(got[dt], v)
		case <-limit.C:
			t.Fatalf("no frame for %s; got %v", want, got)
		}
	}
	gw.Stop(t, syscall.SIGTERM)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	// By DataTime, the values published and the values the platform got
	// must be the same multiset: two readings may share a second (the
	// first poll after a restart), each in its own frame.
	published := map[string][]string{}
	n := 0
	for at, v := range tr.values {
		if !at.After(cut) {
			dt := hj212.FormatTime(at, hj212.Beijing)
			published[dt] = append(published[dt], strconv.FormatFloat(v, 'f', 1, 64))
			n++
		}
	}
	for dt, vs := range published {
		slices.Sort(vs)
		slices.Sort(got[dt])
		if !slices.Equal(vs, got[dt]) {
			t.Errorf("DataTime %s: published %q, the platform got %q", dt, vs, got[dt])
		}
		delete(got, dt)
	}
	for dt, vs := range got {
		if dt <= want {
			t.Errorf("the platform got %s %q, which the gateway never published", dt, vs)
		}
	}
	if n < 6 {
		t.Fatalf("only %d readings compared", n)
	}
}
