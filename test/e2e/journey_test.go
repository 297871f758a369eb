// Package e2e runs Fieldwatch as a user does: the real binaries against a
// real Mosquitto and a real InfluxDB, with simulated sensors on Modbus TCP.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// served records every read the simulator answered.
type served struct {
	mu    sync.Mutex
	reads []sim.Read
}

func (s *served) add(r sim.Read) {
	s.mu.Lock()
	s.reads = append(s.reads, r)
	s.mu.Unlock()
}

func (s *served) byUnit() map[uint8][]sim.Read {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[uint8][]sim.Read{}
	for _, r := range s.reads {
		out[r.Unit] = append(out[r.Unit], r)
	}
	return out
}

func startSim(t *testing.T, rec *served, units map[uint8]sim.Device) (*sim.Server, string) {
	srv := sim.NewServer(nil)
	for u, d := range units {
		srv.AddUnit(u, d)
	}
	srv.OnRead = rec.add
	return srv, sim.Listen(t, srv)
}

type gatewayStatus struct {
	Connected bool `json:"connected"`
	Buffer    struct {
		Readings     uint64 `json:"readings"`
		AckedThrough uint64 `json:"acked_through"`
		NextSeq      uint64 `json:"next_seq"`
	} `json:"buffer"`
	Devices []struct {
		ID     string `json:"id"`
		Health string `json:"health"`
	} `json:"devices"`
}

type station struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Devices []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"devices"`
}

const gatewayConfig = `gateway:
  id: farm-e2e
  site: e2e-site
  location: {lat: 45.75, lon: 126.64}
uplink:
  brokers: [%s]
  batch_size: 50
  batch_delay: 200ms
  ack_timeout: 5s
  state_interval: 2s
buffer:
  dir: %s
  fsync: always
http:
  listen: %s
buses:
  - name: dtu
    type: tcp
    address: %s
    timeout: 5s
    retries: 0
    quarantine: {after: 100}
    devices:
      - {id: soil-a, profile: renke/rs-ecth-n01, unit: 1, interval: 200ms}
      - {id: soil-b, profile: renke/rs-ecth-n01, unit: 2, interval: 300ms}
      - {id: air-1, profile: renke/rs-ws-n01-8, unit: 10, interval: 250ms}
`

// TestReadingJourney follows readings from simulated sensors through the
// gateway binary, Mosquitto and the cloud binary into InfluxDB, and checks
// with a Flux query that exactly what the simulator served, after scaling,
// is stored, and that the gateway's buffer empties on the cloud's acks.
func TestReadingJourney(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	db := testenv.StartInfluxDB(t)
	env := &sim.Environment{Seed: 42}
	rec := &served{}
	simSrv, simAddr := startSim(t, rec, map[uint8]sim.Device{
		1:  &sim.SoilProbe{Env: env, Probe: 0},
		2:  &sim.SoilProbe{Env: env, Probe: 1},
		10: &sim.AirSensor{Env: env},
	})

	cloudHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cloud := start(t, "fieldwatch-cloud", "run", "-mqtt-url", mosq.URL, "-influx-url", db.URL, "-influx-token-file", db.TokenFile,
		"-influx-bucket", db.Bucket, "-http", cloudHTTP, "-data", t.TempDir())
	waitHealthy(t, cloudHTTP)

	dir := t.TempDir()
	gwHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(gatewayConfig, mosq.URL, filepath.Join(dir, "buffer"), gwHTTP, simAddr)), 0o644)
	gw := start(t, "fieldwatch-gateway", "run", "-c", cfg)

	// Let every unit be read at least 15 times, then silence the bus. The
	// simulator records a read as it answers it, so a reply the gateway
	// gave up on would be served but never stored: the bus timeout is long
	// enough that a loaded machine is not a dead unit (and no retry reads a
	// unit twice). Quarantine is put off, so a silent unit stays "failing"
	// and adds no quarantine event to the buffer while the test looks.
	testenv.Eventually(t, "15 reads of every unit", 60*time.Second, func() bool {
		by := rec.byUnit()
		return len(by[1]) >= 15 && len(by[2]) >= 15 && len(by[10]) >= 15
	})
	for _, u := range []uint8{1, 2, 10} {
		simSrv.SetDead(u, true)
	}
	var st gatewayStatus
	testenv.Eventually(t, "gateway buffer emptied by acks", 120*time.Second, func() bool {
		if err := testenv.GetJSON("http://"+gwHTTP+"/status", &st); err != nil {
			return false
		}
		failing := 0
		for _, d := range st.Devices {
			if d.Health == "failing" {
				failing++
			}
		}
		return failing == 3 && st.Buffer.Readings == 0 && st.Buffer.AckedThrough == st.Buffer.NextSeq-1
	})

	// What the simulator served, scaled as the vendors' maps say.
	type point struct {
		t time.Time
		v float64
	}
	want := servedValues(rec, map[uint8]string{1: "soil-a", 2: "soil-b", 10: "air-1"})

	// What InfluxDB holds, by Flux.
	client := influxdb2.NewClient(db.URL, db.Token)
	defer client.Close()
	res, err := client.QueryAPI("").Query(context.Background(), `from(bucket: "db/autogen")
  |> range(start: 2020-01-01T00:00:00Z)
  |> filter(fn: (r) => r._field == "value" and r.gateway == "farm-e2e" and r.site == "e2e-site")`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]point{}
	for res.Next() {
		rec := res.Record()
		key := fmt.Sprintf("%v/%s", rec.ValueByKey("device"), rec.Measurement())
		got[key] = append(got[key], point{rec.Time(), rec.Value().(float64)})
	}
	if res.Err() != nil {
		t.Fatal(res.Err())
	}
	if len(got) != len(want) {
		t.Fatalf("InfluxDB has %d series, the simulator served %d: %v", len(got), len(want), keys(got))
	}
	total := 0
	for key, w := range want {
		g := got[key]
		sort.Slice(g, func(i, j int) bool { return g[i].t.Before(g[j].t) })
		if len(g) != len(w) {
			t.Fatalf("%s: InfluxDB has %d values, the simulator served %d", key, len(g), len(w))
		}
		for i := range w {
			if g[i].v != w[i] {
				t.Fatalf("%s[%d]: stored %v, served %v", key, i, g[i].v, w[i])
			}
		}
		total += len(w)
	}
	if uint64(total) != st.Buffer.NextSeq-1 {
		t.Fatalf("the gateway acquired %d readings, %d are stored", st.Buffer.NextSeq-1, total)
	}
	t.Logf("%d readings in %d series stored exactly as served", total, len(want))

	// The cloud shows the station online; killed without warning, its last
	// will turns it offline.
	var stations []station
	if err := testenv.GetJSON("http://"+cloudHTTP+"/api/v1/stations", &stations); err != nil || len(stations) != 1 ||
		stations[0].State != "online" || len(stations[0].Devices) != 3 {
		t.Fatalf("stations %+v, %v", stations, err)
	}
	gw.Stop(t, syscall.SIGKILL)
	testenv.Eventually(t, "station offline after the gateway died", 60*time.Second, func() bool {
		var ss []station
		return testenv.GetJSON("http://"+cloudHTTP+"/api/v1/stations", &ss) == nil && len(ss) == 1 && ss[0].State == "offline"
	})
	cloud.Stop(t, syscall.SIGTERM)
	if code := cloud.ExitCode(); code != 0 {
		t.Fatalf("cloud exited with %d on SIGTERM", code)
	}
}

// servedValues is what the simulator served, by "device/metric" (devices
// named by unit; unit 10 an air sensor, the others soil probes), scaled as
// the vendors' maps say, in the order served.
func servedValues(rec *served, devOf map[uint8]string) map[string][]float64 {
	want := map[string][]float64{}
	for unit, reads := range rec.byUnit() {
		dev := devOf[unit]
		sort.Slice(reads, func(i, j int) bool { return reads[i].At.Before(reads[j].At) })
		for _, r := range reads {
			w := r.Words
			if unit == 10 {
				want[dev+"/air_humidity"] = append(want[dev+"/air_humidity"], float64(w[0])/10)
				want[dev+"/air_temperature"] = append(want[dev+"/air_temperature"], float64(int16(w[1]))/10)
				continue
			}
			want[dev+"/soil_moisture"] = append(want[dev+"/soil_moisture"], float64(w[0])/10)
			want[dev+"/soil_temperature"] = append(want[dev+"/soil_temperature"], float64(int16(w[1]))/10)
			want[dev+"/soil_ec"] = append(want[dev+"/soil_ec"], float64(w[2]))
		}
	}
	return want
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestBadInputRefused sends the cloud a malformed batch, a batch claiming to
// be another gateway, and a bad state message: each is counted under its
// reason, and a good batch after them is still stored and acknowledged.
func TestBadInputRefused(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	cloudHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	start(t, "fieldwatch-cloud", "run", "-mqtt-url", mosq.URL, "-http", cloudHTTP, "-data", t.TempDir())
	waitHealthy(t, cloudHTTP)
	c := testenv.MQTTClient(t, mosq.URL, "intruder")
	acks := make(chan telemetry.Ack, 10)
	c.Subscribe(telemetry.AckTopic("gw-a"), 1, func(_ mqtt.Client, m mqtt.Message) {
		if a, err := telemetry.DecodeAck(m.Payload()); err == nil {
			acks <- a
		}
	}).Wait()
	batch := func(gw string) []byte {
		b := &telemetry.Batch{Gateway: gw, Stream: "s1", FirstSeq: 1, Readings: []telemetry.Reading{
			{Device: "d", Metric: "m", Value: 1, Time: time.Now()}}}
		data, err := telemetry.Encode(b, telemetry.CodecRowsDeflate)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for _, m := range []struct {
		topic   string
		payload []byte
	}{
		{telemetry.UpTopic("gw-a"), []byte("\x00\x01 garbage")},
		{telemetry.UpTopic("gw-a"), batch("gw-b")},
		{telemetry.StateTopic("gw-a"), []byte(`{"state":"asleep"}`)},
	} {
		c.Publish(m.topic, 1, false, m.payload).Wait()
	}
	testenv.Eventually(t, "three refusals counted", 30*time.Second, func() bool {
		m, err := testenv.Scrape("http://" + cloudHTTP + "/metrics")
		return err == nil && m[`fieldwatch_ingest_rejected_total{reason="malformed"}`] == 1 &&
			m[`fieldwatch_ingest_rejected_total{reason="gateway_mismatch"}`] == 1 &&
			m[`fieldwatch_ingest_rejected_total{reason="bad_state"}`] == 1
	})
	c.Publish(telemetry.UpTopic("gw-a"), 1, false, batch("gw-a")).Wait()
	select {
	case a := <-acks:
		if a.First != 1 || a.Last != 1 {
			t.Fatalf("ack %+v", a)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the good batch after the bad ones was not acknowledged")
	}
	select {
	case a := <-acks:
		t.Fatalf("a second ack %+v: a refused batch was acknowledged", a)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestConfigTypoRefused starts the gateway with a typo: it must refuse to
// run, exit 3, and name the file, line and field.
func TestConfigTypoRefused(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	body := fmt.Sprintf(gatewayConfig, "tcp://127.0.0.1:1", t.TempDir(), "127.0.0.1:0", "127.0.0.1:1")
	body = strings.Replace(body, "batch_delay: 200ms", "bacth_delay: 200ms", 1)
	os.WriteFile(cfg, []byte(body), 0o644)
	gw := start(t, "fieldwatch-gateway", "run", "-c", cfg)
	if code := gw.ExitCode(); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	want := cfg + `:8: uplink.bacth_delay: unknown field (did you mean "batch_delay"?)`
	if !strings.Contains(gw.Logs(), want) {
		t.Fatalf("output does not name the typo:\n%s", gw.Logs())
	}
}
