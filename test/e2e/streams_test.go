package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

const streamsGatewayConfig = `gateway: {id: coast-e2e, site: e2e-coast, clock: ntp}
uplink:
  brokers: [%[1]s]
  batch_size: 200
  batch_delay: 200ms
  ack_timeout: 5s
  state_interval: 2s
buffer: {dir: %[2]s, fsync: always}
http: {listen: %[3]s}
streams:
  - id: buoy-e2e
    profile: generic/met-buoy-gmx500-awac
    port: %[4]s
    baud: 9600
    mooring: {lat: 35.95, lon: 120.45, radius_m: 100}
  - id: gate-e2e
    profile: priority/rdm6300
    port: %[5]s
`

// streamStatus is the part of the gateway's /status this test reads.
type streamStatus struct {
	Buffer struct {
		Readings     uint64 `json:"readings"`
		AckedThrough uint64 `json:"acked_through"`
		NextSeq      uint64 `json:"next_seq"`
	} `json:"buffer"`
	Streams []struct {
		ID        string            `json:"id"`
		Connected bool              `json:"connected"`
		Frames    uint64            `json:"frames"`
		Errors    map[string]uint64 `json:"errors"`
	} `json:"streams"`
}

// TestStreamJourney drives a simulated buoy and an RFID reader through
// real pseudo-terminal pairs into the gateway binary, and follows what they
// said through Mosquitto and the cloud into InfluxDB: every intact water
// temperature and wind sentence the buoy sent (found independently of our
// NMEA code, by regular expression and checksum) is stored with its value,
// the buoy's drift is one event, each tag visit is one event with its read
// count, and the buffer empties on the cloud's acks.
func TestStreamJourney(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	db := testenv.StartInfluxDB(t)
	dir := t.TempDir()

	var (
		mu      sync.Mutex
		talking bool
		sent    []byte
	)
	start0 := time.Now()
	buoy := &sim.BuoyStream{Env: sim.Environment{Seed: 11}, Lat: 35.95, Lon: 120.45, Met: "XDR", Seed: 5,
		Faults: sim.BuoyFaults{Garbage: 0.03, Binary: 0.03, BadChecksum: 0.03, Overlong: 0.01},
		Drift: func(at time.Time) (float64, float64) { // 300 m east once three seconds have passed
			if at.Sub(start0) > 3*time.Second {
				return 0, 300
			}
			return 0, 0
		}}
	buoyPort := sim.NewStreamPort(filepath.Join(dir, "buoy"), serialport.Mode{Baud: 9600}, time.Second, func(now time.Time) []byte {
		mu.Lock()
		defer mu.Unlock()
		if !talking {
			return nil
		}
		b := buoy.Next(now)
		sent = append(sent, b...)
		return b
	}, nil)
	reader := sim.NewEM4100Reader(8)
	readerPort := sim.NewStreamPort(filepath.Join(dir, "reader"), serialport.Mode{Baud: 9600}, 20*time.Millisecond,
		func(now time.Time) []byte { mu.Lock(); defer mu.Unlock(); return reader.Read(now) }, nil)
	for _, p := range []*sim.StreamPort{buoyPort, readerPort} {
		if err := p.Plug(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer p.Unplug(nil)
	}

	cloudHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	start(t, "fieldwatch-cloud", "run", "-mqtt-url", mosq.URL, "-influx-url", db.URL, "-influx-token-file", db.TokenFile,
		"-influx-bucket", db.Bucket, "-http", cloudHTTP, "-data", t.TempDir())
	waitHealthy(t, cloudHTTP)
	gwHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(streamsGatewayConfig, mosq.URL, filepath.Join(dir, "buffer"), gwHTTP,
		buoyPort.Link, readerPort.Link)), 0o644)
	start(t, "fieldwatch-gateway", "run", "-c", cfg)
	var st streamStatus
	testenv.Eventually(t, "both ports open", 30*time.Second, func() bool {
		return testenv.GetJSON("http://"+gwHTTP+"/status", &st) == nil && len(st.Streams) == 2 && st.Streams[0].Connected && st.Streams[1].Connected
	})

	// The buoy talks while three tags visit the reader: A, B, and A again.
	// Each tag is presented only once the gateway has ended the visit
	// before (its "gone" version is in the buffer, after the profile's 2 s
	// window): the next read is a new visit however late the gateway read
	// the last one.
	mu.Lock()
	talking = true
	mu.Unlock()
	visits := []string{"14008EC793", "0A0B0C0D0E", "14008EC793"}
	var reads []int
	for i, tag := range visits {
		mu.Lock()
		before := reader.Counts.Good
		reader.Present(tag, time.Now())
		mu.Unlock()
		time.Sleep(1500 * time.Millisecond)
		mu.Lock()
		reader.Remove()
		reads = append(reads, reader.Counts.Good-before)
		mu.Unlock()
		testenv.Eventually(t, fmt.Sprintf("visit %d of %s ended at the gateway", i+1, tag), 60*time.Second, func() bool {
			m, err := testenv.Scrape("http://" + gwHTTP + "/metrics")
			return err == nil && m[`fieldwatch_gateway_stream_events_total{device="gate-e2e"}`] >= float64(2*(i+1))
		})
	}
	// And until it has sent enough intact water temperatures to compare.
	testenv.Eventually(t, "8 intact MTW sentences sent", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(buoyOracle(string(sent))["water_temperature"]) >= 8
	})
	mu.Lock()
	talking = false
	sentences := buoy.Counts.Sentences
	mu.Unlock()
	testenv.Eventually(t, "everything decoded and acknowledged", 60*time.Second, func() bool {
		if testenv.GetJSON("http://"+gwHTTP+"/status", &st) != nil {
			return false
		}
		return st.Streams[0].Frames == uint64(sentences) && st.Buffer.Readings == 0 &&
			st.Buffer.AckedThrough == st.Buffer.NextSeq-1
	})
	t.Logf("buoy: %d sentences decoded, refused %v; items acquired %d", st.Streams[0].Frames, st.Streams[0].Errors, st.Buffer.NextSeq-1)

	// The oracle: intact MTW and true-wind MWV sentences in what was sent.
	mu.Lock()
	want := buoyOracle(string(sent))
	mu.Unlock()
	if len(want["water_temperature"]) < 8 {
		t.Fatalf("the buoy sent only %d intact MTW sentences", len(want["water_temperature"]))
	}

	client := influxdb2.NewClient(db.URL, db.Token)
	defer client.Close()
	query := func(flux string) map[string][]float64 {
		res, err := client.QueryAPI("").Query(context.Background(), flux)
		if err != nil {
			t.Fatal(err)
		}
		type point struct {
			t time.Time
			v float64
		}
		got := map[string][]point{}
		for res.Next() {
			r := res.Record()
			key := r.Measurement()
			if k, ok := r.ValueByKey("key").(string); ok {
				key = k
			}
			var v float64
			switch x := r.Value().(type) {
			case float64:
				v = x
			case int64: // count()
				v = float64(x)
			}
			got[key] = append(got[key], point{r.Time(), v})
		}
		if res.Err() != nil {
			t.Fatal(res.Err())
		}
		out := map[string][]float64{}
		for k, ps := range got {
			sort.Slice(ps, func(i, j int) bool { return ps[i].t.Before(ps[j].t) })
			for _, p := range ps {
				out[k] = append(out[k], p.v)
			}
		}
		return out
	}
	got := query(`from(bucket: "db/autogen") |> range(start: 2020-01-01T00:00:00Z)
  |> filter(fn: (r) => r._field == "value" and r.gateway == "coast-e2e" and r.device == "buoy-e2e")
  |> filter(fn: (r) => r._measurement == "water_temperature" or r._measurement == "wind_speed")`)
	for metric, w := range want {
		if fmt.Sprint(got[metric]) != fmt.Sprint(w) {
			t.Errorf("%s: InfluxDB holds %v\nthe buoy sent   %v", metric, got[metric], w)
		}
	}

	// Every reading acquired is stored once: items in the buffer's sequence
	// are the readings plus two versions (present, gone) of each visit and
	// the drift event.
	all := query(`from(bucket: "db/autogen") |> range(start: 2020-01-01T00:00:00Z)
  |> filter(fn: (r) => r._field == "value" and r.gateway == "coast-e2e") |> group() |> count()`)
	var stored uint64
	for _, ns := range all {
		for _, n := range ns {
			stored += uint64(n)
		}
	}
	if n := stored + uint64(2*len(visits)) + 1; n != st.Buffer.NextSeq-1 {
		t.Errorf("InfluxDB holds %d readings; with the %d event versions that is %d items, the gateway acquired %d",
			stored, 2*len(visits)+1, n, st.Buffer.NextSeq-1)
	}

	// Tag visits: one event per visit, with the reader's good reads.
	counts := query(`from(bucket: "db/autogen") |> range(start: 2020-01-01T00:00:00Z)
  |> filter(fn: (r) => r._measurement == "event" and r.gateway == "coast-e2e" and r.kind == "tag" and r._field == "count")
  |> group()`)
	var visitsStored []string
	for key, ns := range counts {
		for range ns {
			visitsStored = append(visitsStored, key)
		}
	}
	sort.Strings(visitsStored)
	if fmt.Sprint(visitsStored) != "[0A0B0C0D0E 14008EC793 14008EC793]" {
		t.Errorf("visits stored %v; want A, B and A again", visitsStored)
	}
	if fmt.Sprint(counts["14008EC793"]) != fmt.Sprint([]float64{float64(reads[0]), float64(reads[2])}) ||
		fmt.Sprint(counts["0A0B0C0D0E"]) != fmt.Sprint([]float64{float64(reads[1])}) {
		t.Errorf("reads per visit stored %v, the reader sent %v", counts, reads)
	}
	drift := query(`from(bucket: "db/autogen") |> range(start: 2020-01-01T00:00:00Z)
  |> filter(fn: (r) => r._measurement == "event" and r.gateway == "coast-e2e" and r.kind == "drift" and r._field == "distance_m")
  |> group()`)
	if d := drift["event"]; len(d) != 1 || d[0] < 290 || d[0] > 310 {
		t.Errorf("drift events %v; want one, about 300 m", drift)
	}
}

// buoyOracle finds the intact water temperature (MTW) and true wind (MWV)
// sentences in what the buoy sent, by regular expression and checksum,
// independently of our NMEA code, and returns their values by metric.
func buoyOracle(wire string) map[string][]float64 {
	want := map[string][]float64{}
	for _, m := range buoySentence.FindAllStringSubmatch(wire, -1) {
		body := m[1] + "," + m[3]
		var x byte
		for i := 0; i < len(body); i++ {
			x ^= body[i]
		}
		if fmt.Sprintf("%02X", x) != m[4] {
			continue // sent with a bad checksum
		}
		f := strings.Split(m[3], ",")
		switch {
		case m[2] == "MTW":
			v, _ := strconv.ParseFloat(f[0], 64)
			want["water_temperature"] = append(want["water_temperature"], v)
		case f[1] == "T" && f[3] == "M":
			v, _ := strconv.ParseFloat(f[2], 64)
			want["wind_speed"] = append(want["wind_speed"], v)
		}
	}
	return want
}

var buoySentence = regexp.MustCompile(`\$([A-Z]{2}(MTW|MWV)),([^*$\r\n]*)\*([0-9A-F]{2})\r\n`)
