package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/loadgen"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

var sideBySideReadings = flag.Int("sidebyside-readings", 1_000_000,
	"readings each path of BenchmarkIngestSideBySide stores")

// sideBySideDBCPUs gives the database CPUs of its own: influxd's threads
// are pinned to them (taskset), while the benchmark is run pinned to the
// others (`taskset -c 1 go test …`), as when the database has its own
// machine: then what each path costs the database, not what its clients
// take from it, sets its rate.
var sideBySideDBCPUs = flag.String("sidebyside-db-cpus", "",
	"CPU list (taskset -c) to pin BenchmarkIngestSideBySide's influxd to; run the benchmark itself on the others")

// startSBSInfluxDB starts a fresh influxd for one path, pinned to
// -sidebyside-db-cpus when given.
func startSBSInfluxDB(b *testing.B) *testenv.InfluxDB {
	b.Helper()
	db := testenv.StartInfluxDB(b)
	if cpus := *sideBySideDBCPUs; cpus != "" {
		out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(db.Pid())).CombinedOutput()
		if err != nil {
			db.Stop()
			b.Fatalf("taskset influxd to CPUs %s: %v: %s", cpus, err, out)
		}
	}
	return db
}

// The side-by-side run's shape: 10 gateways (or MQTT publishers) sending
// batches (messages) of 500 readings; 4 in flight per gateway; 4 raw
// writers.
const (
	sbsGateways = 10
	sbsPerBatch = 500
	sbsInFlight = 4
	sbsWriters  = 4
)

// BenchmarkIngestSideBySide stores the same -sidebyside-readings readings
// (10 gateways, 25 devices each, soil moisture every millisecond), in the
// InfluxDB layout the cloud writes, into InfluxDB 1.8.10 by three paths,
// one sub-benchmark each, a fresh influxd (and Mosquitto) for each:
//
//   - raw: line protocol POSTed to /write by 4 writers, 5,000 lines a
//     request (the ceiling), then 500;
//   - telegraf: Telegraf (testenv.TelegrafVersion, built on first use)
//     consuming the same line protocol from Mosquitto (mqtt_consumer,
//     persistent session, QoS 1) and writing batches of 5,000 to the v2
//     write API (influxdb_v2) uncompressed, as the other paths write: with
//     one concurrent write (its default) and with 4; and with its default
//     content_encoding, gzip;
//   - cloud: the fieldwatch-cloud binary fed by 10 gateways speaking the real
//     protocol (compact codec, 4 batches of 500 in flight each).
//
// Each path's time runs from its first request or publish to the moment
// everything is stored: the last write answered (raw), Telegraf's log
// reporting the last metric written (Telegraf), the last ack (cloud). Each
// then checks that InfluxDB holds exactly the readings sent, with the
// cloud's tags and fields and no others. Reported: readings/s, the ratio to
// the 5,000-line raw rate of the same run (x_ceiling), and the peak RSS
// (VmHWM) of Telegraf or the cloud, each path's row logged, and a table of
// them all printed at the end, with the CPU each server used and what
// processes the benchmark did not start took of the machine meanwhile.
// (ns/op includes starting the servers and checking the store: ignore it.)
func BenchmarkIngestSideBySide(b *testing.B) {
	n := *sideBySideReadings
	if n < sbsGateways {
		b.Fatalf("-sidebyside-readings %d: at least %d", n, sbsGateways)
	}
	// Times in the past, a millisecond apart per gateway.
	t0 := time.Now().Add(-time.Duration(n/sbsGateways+1)*time.Millisecond - time.Minute).Truncate(time.Second)
	data := newSBSData(n, t0)
	cloud := buildCloud(b)
	paths := []struct {
		name string
		run  func(b *testing.B) pathResult
	}{
		{"raw,writers=4,lines=5000", func(b *testing.B) pathResult { return runRaw(b, data, sbsWriters, 5000) }},
		{"raw,writers=4,lines=500", func(b *testing.B) pathResult { return runRaw(b, data, sbsWriters, 500) }},
		{"telegraf,batch=5000", func(b *testing.B) pathResult { return runTelegraf(b, data, 1, "identity") }},
		{"telegraf,batch=5000,gzip", func(b *testing.B) pathResult { return runTelegraf(b, data, 1, "gzip") }},
		{"telegraf,batch=5000,concurrent_writes=4", func(b *testing.B) pathResult {
			return runTelegraf(b, data, 4, "identity")
		}},
		{"cloud,compact,gateways=10,inflight=4", func(b *testing.B) pathResult { return runCloud(b, data, cloud) }},
	}
	var ceiling float64
	head := "| path | readings/s | ÷ raw 5,000 | peak RSS | influxd peak RSS | influxd served | CPU during the run | " +
		"other processes |\n|---|---|---|---|---|---|---|---|"
	rows := make([]string, len(paths))
	for i, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			var sum pathResult
			for range b.N {
				r := p.run(b)
				sum.readings += r.readings
				sum.secs += r.secs
				sum.peakKB, sum.influxKB = max(sum.peakKB, r.peakKB), max(sum.influxKB, r.influxKB)
				sum.cpu = r.cpu
				sum.others = max(sum.others, r.others)
				sum.writes = r.writes
			}
			rate := float64(sum.readings) / sum.secs
			if i == 0 {
				ceiling = rate
			}
			b.ReportMetric(rate, "readings/s")
			ratio := "–"
			if ceiling > 0 {
				b.ReportMetric(rate/ceiling, "x_ceiling")
				ratio = fmt.Sprintf("%.2f", rate/ceiling)
			}
			peak := "–"
			if sum.peakKB > 0 {
				b.ReportMetric(mb(sum.peakKB), "peak_rss_MB")
				peak = fmt.Sprintf("%.0f MB", mb(sum.peakKB))
			}
			row := fmt.Sprintf("| %s | %.0f | %s | %s | %.0f MB | %s | %s | %.0f %% of a core |", p.name, rate, ratio,
				peak, mb(sum.influxKB), sum.writes, sum.cpu, 100*sum.others)
			b.Logf("%d readings in %.2f s\n%s\n%s", sum.readings, sum.secs, head, row)
			rows[i] = row
		})
	}
	// A benchmark with sub-benchmarks prints no log of its own: the table
	// of the paths that ran goes to the output directly.
	var table []string
	for _, row := range rows {
		if row != "" {
			table = append(table, row)
		}
	}
	fmt.Printf("BenchmarkIngestSideBySide, %d readings a path:\n%s\n%s\n", n, head, strings.Join(table, "\n"))
}

// pathResult is one run of one path.
type pathResult struct {
	readings int
	secs     float64
	peakKB   int     // VmHWM of Telegraf or the cloud; 0 for raw writes
	influxKB int     // influxd's VmHWM
	cpu      string  // CPU seconds of the benchmark's servers during the run
	others   float64 // cores busy with processes the benchmark did not start
	writes   influxWrites
}

// sbsData is the readings, as gateway batches and as line protocol.
type sbsData struct {
	n       int
	batches [][]*telemetry.Batch // per gateway
	lp      []byte               // every reading's line, gateway after gateway
	lines   []int                // offset of line i in lp; lines[n] is len(lp)
	gwLines []int                // gateway g's first line; gwLines[gateways] is n
}

func newSBSData(n int, t0 time.Time) *sbsData {
	d := &sbsData{n: n, batches: loadgen.Batches(loadgen.Split(n, sbsGateways), sbsPerBatch, t0)}
	d.lp = make([]byte, 0, n*130)
	stored := time.Now()
	for _, bs := range d.batches {
		d.gwLines = append(d.gwLines, len(d.lines))
		for _, batch := range bs {
			for _, r := range batch.Readings {
				d.lines = append(d.lines, len(d.lp))
				d.lp = appendLine(d.lp, batch.Gateway, r, stored)
			}
		}
	}
	d.lines = append(d.lines, len(d.lp))
	d.gwLines = append(d.gwLines, n)
	return d
}

// appendLine appends r as the line the cloud's InfluxDB store writes for it
// (cloud/internal/store/influx: readingPoints, as WriteBatch calls it):
// measurement the metric; tags gateway, device, unit; fields value, quality,
// clock and delay (seconds from acquisition to storage, here to stored).
// Generated names and units need no escaping.
func appendLine(out []byte, gateway string, r telemetry.Reading, stored time.Time) []byte {
	out = append(out, r.Metric...)
	out = append(out, ",gateway="...)
	out = append(out, gateway...)
	out = append(out, ",device="...)
	out = append(out, r.Device...)
	if r.Unit != "" {
		out = append(out, ",unit="...)
		out = append(out, r.Unit...)
	}
	out = append(out, " value="...)
	out = strconv.AppendFloat(out, r.Value, 'f', -1, 64)
	out = append(out, `,quality="`...)
	out = append(out, r.Quality.String()...)
	out = append(out, `",clock="`...)
	out = append(out, r.Clock.String()...)
	out = append(out, `",delay=`...)
	out = strconv.AppendFloat(out, stored.Sub(r.Time).Seconds(), 'f', -1, 64)
	out = append(out, ' ')
	out = strconv.AppendInt(out, r.Time.UnixNano(), 10)
	return append(out, '\n')
}

// chunks cuts lines [from, to) into pieces of k lines.
func (d *sbsData) chunks(from, to, k int) [][]byte {
	var out [][]byte
	for i := from; i < to; i += k {
		out = append(out, d.lp[d.lines[i]:d.lines[min(to, i+k)]])
	}
	return out
}

// sbsLayout is the layout the cloud writes the generated readings in, as
// influxLayout reports it.
const sbsLayout = "tags device,gateway,unit; fields clock:string,delay:float,quality:string,value:float"

// checkStored fails b unless db holds exactly want readings in sbsLayout.
func checkStored(b *testing.B, db *testenv.InfluxDB, want int) {
	b.Helper()
	if got := influxQLCount(b, db, "SELECT count(value) FROM "+loadgen.Metric); got != want {
		b.Fatalf("InfluxDB holds %d of the %d readings sent", got, want)
	}
	if got := influxLayout(b, db); got != sbsLayout {
		b.Fatalf("InfluxDB layout %q; the cloud writes %q", got, sbsLayout)
	}
}

// runRaw POSTs the line protocol to InfluxDB's /write, lines a request, from
// writers goroutines.
func runRaw(b *testing.B, d *sbsData, writers, lines int) pathResult {
	db := startSBSInfluxDB(b)
	defer db.Stop()
	reqs := d.chunks(0, d.n, lines)
	client := &http.Client{Timeout: time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: writers, DisableCompression: true}}
	defer client.CloseIdleConnections()
	writeURL := db.URL + "/write?db=db&precision=ns"
	var next atomic.Int64
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	w0 := readInfluxWrites(b, db)
	cpu0, ticks0 := childCPU(), readCPUTicks()
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(reqs); i = int(next.Add(1) - 1) {
				if err := postLines(client, writeURL, reqs[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	cpu, others := selfCPU(cpuSince(cpu0, secs), ticks0, secs), otherLoad(ticks0, cpu0, secs)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	r := pathResult{readings: d.n, secs: secs, cpu: cpu, others: others, influxKB: hwm(b, db.Pid()),
		writes: readInfluxWrites(b, db).since(w0)}
	checkStored(b, db, d.n)
	return r
}

func postLines(client *http.Client, url string, body []byte) error {
	resp, err := client.Post(url, "text/plain; charset=utf-8", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("InfluxDB /write: %s %s", resp.Status, msg)
	}
	return nil
}

// sbsBroker is Mosquitto's config for the MQTT paths: the limits the shipped
// deploy/mosquitto/fieldwatch.conf sets (Nagle off, 64 QoS 1 messages in
// flight to a client), with a queue that holds every message of the run, so
// that the broker drops none while Telegraf catches up.
func sbsBroker(n int) []string {
	return []string{"set_tcp_nodelay true", "max_packet_size 1100000", "max_inflight_messages 64",
		fmt.Sprintf("max_queued_messages %d", max(10000, 2*n/sbsPerBatch))}
}

// Telegraf's side: the client id of its persistent session and the topics
// the publishers send line protocol on.
const (
	telegrafClientID = "telegraf-bench"
	lpTopics         = "fieldwatch-bench/+/lp"
)

const telegrafConf = `[agent]
  interval = "10s"
  round_interval = false
  metric_batch_size = 5000
  metric_buffer_limit = %d
  collection_jitter = "0s"
  flush_interval = "200ms"
  flush_jitter = "0s"
  debug = true
  omit_hostname = true

[[inputs.mqtt_consumer]]
  servers = [%q]
  topics = [%q]
  topic_tag = ""
  qos = 1
  persistent_session = true
  client_id = %q
  max_undelivered_messages = 1000
  data_format = "influx"

[[outputs.influxdb_v2]]
  urls = [%q]
  token = %q
  organization = ""
  bucket = %q
  content_encoding = %q
  concurrent_writes = %d
`

// runTelegraf publishes the line protocol over MQTT (QoS 1, a publisher per
// gateway, messages of 500 lines) to Telegraf, which writes it to InfluxDB.
func runTelegraf(b *testing.B, d *sbsData, concurrentWrites int, encoding string) pathResult {
	bin := testenv.Telegraf(b)
	mosq := testenv.StartMosquitto(b, sbsBroker(d.n)...)
	defer mosq.Stop()
	db := startSBSInfluxDB(b)
	defer db.Stop()
	// Telegraf takes a comma in -config as a list of files: no b.TempDir,
	// which is named after the benchmark.
	dir, err := os.MkdirTemp("", "telegraf-bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	confPath := filepath.Join(dir, "telegraf.conf")
	conf := fmt.Sprintf(telegrafConf, max(1_000_000, d.n), mosq.URL, lpTopics, telegrafClientID, db.URL, db.Token,
		db.Bucket, encoding, concurrentWrites)
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	tg := startTelegraf(b, bin, confPath, filepath.Join(dir, "telegraf.log"))
	defer tg.stop(b)
	pubs := make([]mqtt.Client, sbsGateways)
	for g := range pubs {
		pubs[g] = testenv.MQTTClient(b, mosq.URL, fmt.Sprintf("lp-publisher-%02d", g))
	}
	probeTelegraf(b, tg, pubs[0])
	tg.expect(d.n)
	var wg sync.WaitGroup
	errs := make(chan error, sbsGateways)
	w0 := readInfluxWrites(b, db)
	cpu0, ticks0 := childCPU(), readCPUTicks()
	start := time.Now()
	for g, c := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := strings.Replace(lpTopics, "+", loadgen.GatewayID(g), 1)
			var toks []mqtt.Token
			for _, msg := range d.chunks(d.gwLines[g], d.gwLines[g+1], sbsPerBatch) {
				toks = append(toks, c.Publish(topic, 1, false, msg))
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(loadgen.AckTimeout) || tok.Error() != nil {
					errs <- fmt.Errorf("publisher %d: no PUBACK: %v", g, tok.Error())
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	done, err := tg.wait(loadgen.AckTimeout, 30*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	secs, all := done.Sub(start).Seconds(), time.Since(start).Seconds()
	r := pathResult{readings: d.n, secs: secs, cpu: selfCPU(cpuSince(cpu0, all), ticks0, all),
		others: otherLoad(ticks0, cpu0, all),
		peakKB: hwm(b, tg.cmd.Process.Pid), influxKB: hwm(b, db.Pid()), writes: readInfluxWrites(b, db).since(w0)}
	for _, c := range pubs {
		c.Disconnect(100)
	}
	b.Logf("telegraf's warnings and errors:\n%s", tg.warningSummary())
	checkStored(b, db, d.n)
	return r
}

// probeTelegraf makes sure Telegraf is subscribed, and idle: it publishes
// a probe line (measurement sbs_probe, not counted) and waits up to 2 s
// for Telegraf to write it (it flushes every 200 ms), again until one is
// written. A probe published before Telegraf subscribed is lost, never
// written late.
func probeTelegraf(b *testing.B, tg *telegraf, c mqtt.Client) {
	b.Helper()
	topic := strings.Replace(lpTopics, "+", "probe", 1)
	for probe := 0; ; probe++ {
		if probe == 30 || tg.exited() {
			b.Fatalf("telegraf wrote none of %d probes", probe)
		}
		before := tg.count()
		line := fmt.Sprintf("sbs_probe n=%di %d\n", probe, time.Now().UnixNano())
		if tok := c.Publish(topic, 1, false, line); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("probe not published: %v", tok.Error())
		}
		if tg.waitCount(before+1, 2*time.Second) {
			return
		}
	}
}

// telegraf is a running Telegraf whose log is read for the metrics it wrote.
type telegraf struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when it exits

	mu       sync.Mutex
	partial  []byte
	warnings map[string]int // its warnings and errors (without the time) and how often each came
	written  int
	target   int
	reached  time.Time
	progress chan struct{} // a token when written grows
}

// wroteRE matches the debug line models/running_output.go logs after each
// successful write.
var wroteRE = regexp.MustCompile(`Wrote batch of (\d+) metrics in`)

func startTelegraf(b *testing.B, bin, conf, log string) *telegraf {
	b.Helper()
	f, err := os.Create(log)
	if err != nil {
		b.Fatal(err)
	}
	tg := &telegraf{log: f, done: make(chan struct{}), progress: make(chan struct{}, 1), warnings: map[string]int{}}
	tg.cmd = exec.Command(bin, "--config", conf)
	tg.cmd.Stdout, tg.cmd.Stderr = tg, tg
	tg.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := tg.cmd.Start(); err != nil {
		f.Close()
		b.Fatal(err)
	}
	go func() { tg.cmd.Wait(); f.Close(); close(tg.done) }()
	b.Cleanup(func() {
		tg.stop(b)
		if b.Failed() {
			data, _ := os.ReadFile(log)
			b.Logf("--- telegraf.log ---\n%s", data[max(0, len(data)-6000):])
		}
	})
	return tg
}

// Write takes Telegraf's output: into the log, and counted.
func (tg *telegraf) Write(p []byte) (int, error) {
	tg.log.Write(p)
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.partial = append(tg.partial, p...)
	for {
		i := bytes.IndexByte(tg.partial, '\n')
		if i < 0 {
			break
		}
		line := tg.partial[:i]
		if _, msg, ok := strings.Cut(string(line), " "); ok && (strings.HasPrefix(msg, "W! ") || strings.HasPrefix(msg, "E! ")) {
			tg.warnings[msg]++
		}
		if m := wroteRE.FindSubmatch(line); m != nil {
			k, _ := strconv.Atoi(string(m[1]))
			tg.written += k
			if tg.target > 0 && tg.written >= tg.target && tg.reached.IsZero() {
				tg.reached = time.Now()
			}
			select {
			case tg.progress <- struct{}{}:
			default:
			}
		}
		tg.partial = tg.partial[i+1:]
	}
	return len(p), nil
}

// warningSummary lists Telegraf's warnings and errors, each once with its
// count.
func (tg *telegraf) warningSummary() string {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	var out []string
	for msg, n := range tg.warnings {
		out = append(out, fmt.Sprintf("%d× %s", n, msg))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// count is how many metrics Telegraf has written.
func (tg *telegraf) count() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.written
}

// waitCount waits up to limit for n metrics written.
func (tg *telegraf) waitCount(n int, limit time.Duration) bool {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for tg.count() < n {
		select {
		case <-tg.progress:
		case <-tg.done:
			return false
		case <-timer.C:
			return tg.count() >= n
		}
	}
	return true
}

// expect starts counting: wait returns once n more metrics are written.
func (tg *telegraf) expect(n int) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.target = tg.written + n
}

// wait returns when the expected metrics were written, failing if Telegraf
// writes none for stall, has not written them all within limit, or exits.
func (tg *telegraf) wait(stall, limit time.Duration) (time.Time, error) {
	timer := time.NewTimer(stall)
	defer timer.Stop()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		tg.mu.Lock()
		reached, written, target := tg.reached, tg.written, tg.target
		tg.mu.Unlock()
		if !reached.IsZero() {
			return reached, nil
		}
		select {
		case <-tg.progress:
			timer.Reset(stall)
		case <-tg.done:
			return time.Time{}, fmt.Errorf("telegraf exited having written %d of %d metrics", written, target)
		case <-timer.C:
			return time.Time{}, fmt.Errorf("telegraf wrote nothing for %v: %d of %d metrics written", stall, written,
				target)
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("telegraf wrote %d of %d metrics in %v", written, target, limit)
		}
	}
}

func (tg *telegraf) exited() bool {
	select {
	case <-tg.done:
		return true
	default:
		return false
	}
}

// stop ends Telegraf (SIGTERM, SIGKILL after 20 s) and waits.
func (tg *telegraf) stop(b *testing.B) {
	select {
	case <-tg.done:
		return
	default:
	}
	tg.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-tg.done:
	case <-time.After(20 * time.Second):
		b.Errorf("telegraf did not stop on SIGTERM")
		tg.cmd.Process.Kill()
		<-tg.done
	}
}

// runCloud runs the cloud binary on InfluxDB and Mosquitto and the gateways
// against it.
func runCloud(b *testing.B, d *sbsData, bin string) pathResult {
	mosq := testenv.StartMosquitto(b, sbsBroker(d.n)...)
	defer mosq.Stop()
	db := startSBSInfluxDB(b)
	defer db.Stop()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	cloud := testenv.StartBinary(b, bin, "run", "-mqtt-url", mosq.URL, "-influx-url", db.URL, "-influx-token-file",
		db.TokenFile, "-influx-bucket", db.Bucket, "-http", httpAddr, "-data", b.TempDir(), "-log-level", "warn")
	defer cloud.Stop(b, syscall.SIGTERM)
	testenv.Eventually(b, "cloud healthy", 30*time.Second, func() bool { return httpOK("http://" + httpAddr + "/healthz") })
	w0 := readInfluxWrites(b, db)
	cpu0, ticks0 := childCPU(), readCPUTicks()
	res := loadgen.Run(b, mosq.URL, d.batches, telemetry.CodecCompact, sbsInFlight)
	secs := res.Elapsed.Seconds()
	cpu, others := selfCPU(cpuSince(cpu0, secs), ticks0, secs), otherLoad(ticks0, cpu0, secs)
	if b.Failed() {
		b.FailNow()
	}
	if res.Readings != d.n {
		b.Fatalf("%d of %d readings acknowledged", res.Readings, d.n)
	}
	sort.Slice(res.Lat, func(i, j int) bool { return res.Lat[i] < res.Lat[j] })
	b.Logf("publish to ack: p50 %v p99 %v; cloud counters: %s", percentile(res.Lat, 50), percentile(res.Lat, 99),
		scrape(b, "http://"+httpAddr+"/metrics", "fieldwatch_ingest_batches_total",
			"fieldwatch_ingest_duplicates_total", "fieldwatch_ingest_store_errors_total"))
	r := pathResult{readings: res.Readings, secs: secs, cpu: cpu, others: others, peakKB: hwm(b, cloud.Cmd.Process.Pid),
		influxKB: hwm(b, db.Pid()), writes: readInfluxWrites(b, db).since(w0)}
	checkStored(b, db, d.n)
	return r
}

// hwm is pid's VmHWM in kB.
func hwm(b *testing.B, pid int) int {
	b.Helper()
	m, err := readMemory(pid)
	if err != nil {
		b.Fatal(err)
	}
	return m.hwm
}

// influxQL runs an InfluxQL query on the database "db" and returns the
// first series' rows.
func influxQL(b *testing.B, db *testenv.InfluxDB, q string) [][]any {
	b.Helper()
	c := http.Client{Timeout: 5 * time.Minute}
	resp, err := c.Get(db.URL + "/query?db=db&q=" + url.QueryEscape(q))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Error  string `json:"error"`
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		b.Fatalf("%s: %v", q, err)
	}
	if resp.StatusCode != http.StatusOK || len(out.Results) != 1 || out.Results[0].Error != "" {
		b.Fatalf("%s: %s %+v", q, resp.Status, out)
	}
	if len(out.Results[0].Series) == 0 {
		return nil
	}
	return out.Results[0].Series[0].Values
}

// influxQLCount runs a count query and returns its count, 0 if no rows.
func influxQLCount(b *testing.B, db *testenv.InfluxDB, q string) int {
	b.Helper()
	rows := influxQL(b, db, q)
	if len(rows) == 0 {
		return 0
	}
	n, err := rows[0][1].(json.Number).Int64()
	if err != nil {
		b.Fatalf("%s: %v", q, err)
	}
	return int(n)
}

// influxLayout is loadgen.Metric's tag keys and field keys with their types.
func influxLayout(b *testing.B, db *testenv.InfluxDB) string {
	b.Helper()
	var tags, fields []string
	for _, row := range influxQL(b, db, "SHOW TAG KEYS FROM "+loadgen.Metric) {
		tags = append(tags, fmt.Sprint(row[0]))
	}
	for _, row := range influxQL(b, db, "SHOW FIELD KEYS FROM "+loadgen.Metric) {
		fields = append(fields, fmt.Sprintf("%v:%v", row[0], row[1]))
	}
	sort.Strings(tags)
	sort.Strings(fields)
	return "tags " + strings.Join(tags, ",") + "; fields " + strings.Join(fields, ",")
}

// influxWrites is what influxd's HTTP service has served (/debug/vars):
// write requests and the points they carried.
type influxWrites struct{ reqs, points int64 }

func readInfluxWrites(b *testing.B, db *testenv.InfluxDB) influxWrites {
	b.Helper()
	resp, err := http.Get(db.URL + "/debug/vars")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var vars map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		b.Fatalf("influxd /debug/vars: %v", err)
	}
	var w influxWrites
	for key, raw := range vars {
		if !strings.HasPrefix(key, "httpd") {
			continue
		}
		var s struct {
			Values struct {
				WriteReq        int64 `json:"writeReq"`
				PointsWrittenOK int64 `json:"pointsWrittenOK"`
			} `json:"values"`
		}
		if json.Unmarshal(raw, &s) == nil {
			w.reqs += s.Values.WriteReq
			w.points += s.Values.PointsWrittenOK
		}
	}
	return w
}

func (w influxWrites) since(before influxWrites) influxWrites {
	return influxWrites{reqs: w.reqs - before.reqs, points: w.points - before.points}
}

func (w influxWrites) String() string {
	if w.reqs == 0 {
		return "no writes"
	}
	return fmt.Sprintf("%d writes of %.0f points", w.reqs, float64(w.points)/float64(w.reqs))
}
