package bench

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

var backlogSize = flag.Int("backlog", 1_000_000, "readings waiting in BenchmarkBacklogDrain's buffer")

// drainConfig is what a drain is run with: the gateway's uplink and buffer
// settings, and whether Mosquitto sends without Nagle's delay.
type drainConfig struct {
	name          string
	batchSize     int    // uplink.batch_size
	backlogBatch  int    // uplink.backlog_batch_size
	maxInFlight   int    // uplink.max_in_flight
	fsync         string // buffer.fsync
	brokerNoDelay bool   // Mosquitto's set_tcp_nodelay (its default is false)
}

var drainConfigs = []drainConfig{
	{"defaults", 500, 5000, 4, "always", false},
	{"defaults,broker_nodelay", 500, 5000, 4, "always", true},
	{"backlog_batch=500", 500, 500, 4, "always", false}, // the default before backlog_batch_size
	{"batch=2000", 2000, 2000, 4, "always", false},
	{"batch=5000", 5000, 5000, 4, "always", false},
	{"batch=2000,broker_nodelay", 2000, 2000, 4, "always", true},
}

const benchGateway = "farm-bench"

const drainGatewayConfig = `gateway:
  id: ` + benchGateway + `
  site: bench-site
uplink:
  brokers: [%s]
  batch_size: %d
  backlog_batch_size: %d
  max_in_flight: %d
  reconnect_max: 2s
buffer:
  dir: %s
  fsync: %s
http:
  listen: %s
buses:
  - name: dtu
    type: tcp
    address: %s
    timeout: 300ms
    devices:
%s`

// BenchmarkBacklogDrain runs the real gateway binary on a buffer holding a
// backlog (-backlog readings, two weeks of a 50-series farm at one reading
// a minute) while it polls 20 simulated Modbus TCP stations every second,
// and the real cloud binary on Mosquitto and InfluxDB. The gateway starts
// with its broker unreachable; its memory is read then; a SIGHUP with the
// real broker in the config lets it connect, and it drains the backlog
// behind live data. Reported: the drain rate (backlog items over the time
// from the first batch to the ack that completes the backlog), the live
// readings' latency from acquisition to the cloud's ack during the drain,
// and the gateway's VmRSS/VmHWM. Each iteration is a whole drain.
func BenchmarkBacklogDrain(b *testing.B) {
	bins := buildBinaries(b, "./gateway/cmd/fieldwatch-gateway", "./cloud/cmd/fieldwatch-cloud",
		"./gateway/internal/buffer/bufferfill")
	for _, c := range drainConfigs {
		b.Run(c.name, func(b *testing.B) {
			var items, secs float64
			var live []time.Duration
			var idle, peak memory
			for range b.N {
				r := runDrain(b, bins, c)
				items += float64(r.backlog)
				secs += r.end.Sub(r.start).Seconds()
				live = append(live, r.live...)
				idle.rss, idle.hwm = max(idle.rss, r.idle.rss), max(idle.hwm, r.idle.hwm)
				peak.rss, peak.hwm = max(peak.rss, r.peak.rss), max(peak.hwm, r.peak.hwm)
			}
			b.ReportMetric(items/secs, "readings/s")
			b.ReportMetric(secs/float64(b.N), "drain_s")
			b.ReportMetric(float64(percentile(live, 50).Milliseconds()), "live_p50_ms")
			b.ReportMetric(float64(percentile(live, 99).Milliseconds()), "live_p99_ms")
			b.ReportMetric(float64(percentile(live, 100).Milliseconds()), "live_max_ms")
			b.ReportMetric(mb(idle.rss), "idle_rss_MB")
			b.ReportMetric(mb(idle.hwm), "idle_hwm_MB")
			b.ReportMetric(mb(peak.rss), "drain_rss_MB")
			b.ReportMetric(mb(peak.hwm), "hwm_MB")
		})
	}
}

// drainResult is one drain as measured.
type drainResult struct {
	drain
	idle memory // with the backlog waiting and the broker unreachable
	peak memory // the highest VmRSS sampled during the drain; VmHWM after it
}

func runDrain(b *testing.B, bins string, c drainConfig) drainResult {
	b.StopTimer()
	n := *backlogSize
	dir := b.TempDir()
	bufDir := filepath.Join(dir, "buffer")
	filled := time.Now()
	fillBuffer(b, filepath.Join(bins, "bufferfill"), bufDir, n, filled)

	srv := sim.NewServer(nil)
	for u, d := range farmUnits(&sim.Environment{Seed: 42}) {
		srv.AddUnit(u, d)
	}
	simAddr := sim.Listen(b, srv)
	var broker []string
	if c.brokerNoDelay {
		broker = append(broker, "set_tcp_nodelay true")
	}
	mosq := testenv.StartMosquitto(b, broker...)
	db := testenv.StartInfluxDB(b)
	cloudHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	startBinary(b, filepath.Join(bins, "fieldwatch-cloud"), filepath.Join(dir, "cloud.log"), "run",
		"-mqtt-url", mosq.URL, "-influx-url", db.URL, "-influx-token-file", db.TokenFile, "-influx-bucket", db.Bucket,
		"-http", cloudHTTP, "-data", filepath.Join(dir, "cloud"), "-log-level", "warn")
	testenv.Eventually(b, "cloud healthy", 30*time.Second, func() bool { return httpOK("http://" + cloudHTTP + "/healthz") })
	obs := observe(b, mosq.URL, benchGateway)

	// The gateway, its broker unreachable: the backlog waits.
	gwHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	cfgPath := filepath.Join(dir, "gateway.yaml")
	writeConfig := func(broker string) {
		cfg := fmt.Sprintf(drainGatewayConfig, broker, c.batchSize, c.backlogBatch, c.maxInFlight, bufDir, c.fsync, gwHTTP, simAddr,
			farmDevices(time.Second))
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	writeConfig(fmt.Sprintf("tcp://127.0.0.1:%d", testenv.FreePort(b)))
	gw := startBinary(b, filepath.Join(bins, "fieldwatch-gateway"), filepath.Join(dir, "gateway.log"), "run", "-c", cfgPath)
	var st gatewayStatus
	testenv.Eventually(b, "gateway serving /status with the backlog", 60*time.Second, func() bool {
		return testenv.GetJSON("http://"+gwHTTP+"/status", &st) == nil && st.Buffer.Readings >= uint64(n)
	})
	time.Sleep(3 * time.Second)
	var r drainResult
	var err error
	if r.idle, err = readMemory(gw.Process.Pid); err != nil {
		b.Fatal(err)
	}
	if testenv.GetJSON("http://"+gwHTTP+"/status", &st) != nil || st.Connected {
		b.Fatalf("gateway connected to an unreachable broker? %+v", st)
	}
	b.Logf("idle, %d items waiting: %v", st.Buffer.Readings, r.idle)

	// The broker is put in the config and the gateway told to reload: it
	// connects and drains.
	writeConfig(mosq.URL)
	cpu0 := childCPU()
	hup := time.Now()
	stopSampling := sampleRSS(gw.Process.Pid, &r.peak.rss)
	b.StartTimer()
	if err := gw.Process.Signal(syscall.SIGHUP); err != nil {
		b.Fatal(err)
	}
	testenv.Eventually(b, "backlog acknowledged", 15*time.Minute, func() bool {
		time.Sleep(200 * time.Millisecond)
		return testenv.GetJSON("http://"+gwHTTP+"/status", &st) == nil && st.Buffer.AckedThrough >= uint64(n) &&
			st.Buffer.Readings < uint64(max(c.batchSize, c.backlogBatch)*c.maxInFlight)
	})
	b.StopTimer()
	drained := time.Since(hup)
	cpu := cpuSince(cpu0, drained.Seconds())
	stopSampling()
	after, err := readMemory(gw.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	r.peak.hwm = after.hwm
	time.Sleep(5 * time.Second) // live data after the drain, for comparison
	if r.drain, err = obs.analyse(); err != nil {
		b.Fatal(err)
	}

	b.Logf("config %+v: %d backlog items drained in %.1f s (first batch %.2f s after SIGHUP): %.0f items/s; "+
		"%d live + %d backlog batches seen, %d undecoded", c, r.backlog, r.end.Sub(r.start).Seconds(),
		r.start.Sub(hup).Seconds(), float64(r.backlog)/r.end.Sub(r.start).Seconds(), r.batches[0], r.batches[1],
		r.undecoded)
	b.Logf("live readings acquired during the drain, acquisition → cloud ack: n=%d p50 %v p99 %v max %v",
		len(r.live), percentile(r.live, 50), percentile(r.live, 99), percentile(r.live, 100))
	b.Logf("live readings in the 5 s after it: n=%d p50 %v p99 %v max %v",
		len(r.after), percentile(r.after, 50), percentile(r.after, 99), percentile(r.after, 100))
	b.Logf("gateway memory: idle %v; during the drain VmRSS up to %.1f MB, %v after it", r.idle, mb(r.peak.rss), after)
	b.Logf("CPU from SIGHUP to drained (%.1f s): %s", drained.Seconds(), cpu)
	b.Logf("gateway uplink counters: %s", scrape(b, "http://"+gwHTTP+"/metrics", "fieldwatch_gateway_uplink_batches_resent_total",
		"fieldwatch_gateway_uplink_ack_timeouts_total", "fieldwatch_gateway_uplink_resyncs_total",
		"fieldwatch_gateway_uplink_readings_sent_total", "fieldwatch_gateway_uplink_bytes_sent_total",
		"fieldwatch_gateway_uplink_ack_seconds_sum", "fieldwatch_gateway_uplink_ack_seconds_count"))
	b.Logf("cloud ingest counters: %s", scrape(b, "http://"+cloudHTTP+"/metrics", "fieldwatch_ingest_batches_total",
		"fieldwatch_ingest_store_write_seconds_sum", "fieldwatch_ingest_store_write_seconds_count",
		"fieldwatch_ingest_duplicates_total", "fieldwatch_ingest_store_errors_total"))
	if got := influxCount(b, db, filled.Add(-time.Duration(n/farmSeries+2)*time.Minute), filled); got != n {
		b.Fatalf("InfluxDB holds %d of the %d backlog readings", got, n)
	}
	b.Logf("InfluxDB holds all %d backlog readings (Flux count)", n)
	gw.Process.Signal(syscall.SIGTERM)
	return r
}

// sampleRSS records the highest VmRSS of pid, every 100 ms, in *peak
// until the returned function is called.
func sampleRSS(pid int, peak *int) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := readMemory(pid); err == nil {
				*peak = max(*peak, m.rss)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(stop); <-done }
}

type gatewayStatus struct {
	Connected bool `json:"connected"`
	Buffer    struct {
		Readings     uint64 `json:"readings"`
		AckedThrough uint64 `json:"acked_through"`
		NextSeq      uint64 `json:"next_seq"`
	} `json:"buffer"`
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// scrape returns the Prometheus samples at url whose names start with one
// of names, joined.
func scrape(b *testing.B, url string, names ...string) string {
	m, err := testenv.Scrape(url)
	if err != nil {
		b.Fatal(err)
	}
	var found []string
	for series, v := range m {
		for _, name := range names {
			if strings.HasPrefix(series, name) {
				found = append(found, fmt.Sprintf("%s %v", series, v))
			}
		}
	}
	sort.Strings(found)
	return strings.Join(found, "; ")
}

// influxCount counts the gateway's stored values acquired in [from, to).
func influxCount(b *testing.B, db *testenv.InfluxDB, from, to time.Time) int {
	client := influxdb2.NewClient(db.URL, db.Token)
	defer client.Close()
	q := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._field == "value" and r.gateway == %q)
  |> group()
  |> count()`, db.Bucket, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), benchGateway)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := client.QueryAPI("").Query(ctx, q)
	if err != nil {
		b.Fatal(err)
	}
	total := 0
	for res.Next() {
		if v, ok := res.Record().Value().(int64); ok {
			total += int(v)
		}
	}
	if res.Err() != nil {
		b.Fatal(res.Err())
	}
	return total
}
