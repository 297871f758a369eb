package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// The cluster drill (docs/scaling.md): three NATS nodes on loopback, three
// cloud replicas consuming the partitioned stream, three real gateway
// binaries polling a Modbus simulator and 50 generated gateways speaking
// the real protocol, all sending while one NATS node and then one cloud
// replica are killed (SIGKILL). Afterwards every reading is in InfluxDB,
// and a proxy in front of InfluxDB has counted every write of every point:
// a point written twice is allowed only where the killed replica had
// written its data but not yet its commit record (first write before the
// kill, the second after) — the window docs/scaling.md names. A resend
// that overlaps what is stored is trimmed, never written again.

// clusterCloudConfig is a replica's config: data_dir, HTTP address,
// InfluxDB URL and token file, the NATS URLs; then its alerting section.
const clusterCloudConfig = `data_dir: %s
http:
  listen: %s
store:
  influxdb:
    url: %s
    token_file: %s
    bucket: db/autogen
nats:
  urls: [%s]
  partitions: 8
  replicas: 3
  ack_wait: 10s
  pinned_ttl: 3s
`

const noAlerting = `alerting:
  disabled: true
`

// writeLog counts, per point, the writes InfluxDB accepted through the
// proxy, and when each happened.
type writeLog struct {
	mu     sync.Mutex
	writes map[string][]time.Time // "measurement,tags timestamp" → each accepted write
	lines  int
}

func (w *writeLog) record(body []byte, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") || !strings.Contains(line, "gateway=drill-") {
			continue
		}
		// measurement,tags fields timestamp: the point is its series and time.
		sp := strings.IndexByte(line, ' ')
		ts := line[strings.LastIndexByte(line, ' ')+1:]
		if sp < 0 || strings.HasPrefix(line, "fieldwatch_") || strings.HasPrefix(line, "event") {
			continue
		}
		key := line[:sp] + " " + ts
		w.writes[key] = append(w.writes[key], at)
		w.lines++
	}
}

// influxProxy forwards to InfluxDB and logs each accepted write's points.
func influxProxy(t *testing.T, target string) (string, *writeLog) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	log := &writeLog{writes: map[string][]time.Time{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/write") {
			rp.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w}
		rp.ServeHTTP(rec, r)
		if rec.status/100 != 2 {
			return
		}
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Errorf("gzip write body: %v", err)
				return
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Errorf("gzip write body: %v", err)
				return
			}
		}
		log.record(body, time.Now())
	}))
	t.Cleanup(srv.Close)
	return srv.URL, log
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }
func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// clusterGateway is a generated gateway that behaves as the uplink does where
// it matters here: it fails over between the cluster's MQTT listeners,
// resubscribes to its acks on every connection, and sends again what is
// not acknowledged within ackTimeout, claiming as committed only what it
// was acknowledged.
type clusterGateway struct {
	id      string
	client  mqtt.Client
	batches []*telemetry.Batch
	mu      sync.Mutex
	sent    map[uint64]time.Time // first seq → last sent, while unacknowledged
	acked   map[uint64]bool
	through uint64
	next    int // index of the next batch to send for the first time
}

const (
	drillDevices    = 5
	drillPerBatch   = 20
	drillBatches    = 30
	drillAckTimeout = 3 * time.Second
	drillInFlight   = 4
)

func newClusterGateway(t *testing.T, g int, brokers []string, t0 time.Time) *clusterGateway {
	d := &clusterGateway{id: fmt.Sprintf("drill-gw-%02d", g), sent: map[uint64]time.Time{}, acked: map[uint64]bool{}}
	for i := 0; i < drillBatches; i++ {
		b := &telemetry.Batch{Gateway: d.id, Stream: "drill", FirstSeq: uint64(i*drillPerBatch + 1)}
		for k := i * drillPerBatch; k < (i+1)*drillPerBatch; k++ {
			b.Readings = append(b.Readings, telemetry.Reading{Device: fmt.Sprintf("dev-%d", k%drillDevices),
				Metric: "water_level", Unit: "m", Value: float64(k + 1), Time: t0.Add(time.Duration(k) * time.Millisecond),
				Quality: telemetry.Good, Clock: telemetry.ClockNTP})
		}
		d.batches = append(d.batches, b)
	}
	opts := mqtt.NewClientOptions().SetClientID(d.id).SetCleanSession(true).SetProtocolVersion(4).SetAutoReconnect(true).
		SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).SetMaxReconnectInterval(time.Second).
		SetKeepAlive(5 * time.Second).SetConnectTimeout(2 * time.Second).
		SetOnConnectHandler(func(c mqtt.Client) { go d.subscribe(c) })
	for _, b := range brokers {
		opts.AddBroker(b)
	}
	d.client = mqtt.NewClient(opts)
	d.client.Connect()
	t.Cleanup(func() { d.client.Disconnect(100) })
	return d
}

// subscribe subscribes to the acks as the uplink does (QoS 0), asking
// again while the broker refuses (0x80: NATS's JetStream busy after a
// node loss), for at most a minute.
func (d *clusterGateway) subscribe(c mqtt.Client) {
	topic := telemetry.AckTopic(d.id)
	for range 300 {
		tok := c.Subscribe(topic, 0, d.onAck)
		if tok.WaitTimeout(10*time.Second) && tok.Error() == nil && tok.(*mqtt.SubscribeToken).Result()[topic] != 0x80 {
			return
		}
		if !c.IsConnectionOpen() {
			return // the next connection subscribes
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (d *clusterGateway) onAck(_ mqtt.Client, m mqtt.Message) {
	a, err := telemetry.DecodeAck(m.Payload())
	if err != nil || a.Resync {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.batches {
		if b.FirstSeq >= a.First && b.LastSeq() <= a.Last || b.LastSeq() <= a.Through {
			d.acked[b.FirstSeq] = true
			delete(d.sent, b.FirstSeq)
		}
	}
	for _, b := range d.batches {
		if !d.acked[b.FirstSeq] {
			break
		}
		d.through = b.LastSeq()
	}
}

// step sends what is due: the next batches while fewer than drillInFlight
// are out, and again those unacknowledged for drillAckTimeout. It reports
// whether every batch is acknowledged.
func (d *clusterGateway) step(now time.Time) bool {
	d.mu.Lock()
	var due []*telemetry.Batch
	for _, b := range d.batches[:d.next] {
		if at, out := d.sent[b.FirstSeq]; out && now.Sub(at) >= drillAckTimeout {
			due = append(due, b)
		}
	}
	if d.next < len(d.batches) && len(d.sent) < drillInFlight {
		due = append(due, d.batches[d.next])
		d.next++
	}
	for _, b := range due {
		d.sent[b.FirstSeq] = now
		b.Committed = min(d.through, b.FirstSeq-1)
	}
	done := len(d.acked) == len(d.batches)
	payloads := make([][]byte, 0, len(due))
	for _, b := range due {
		p, err := telemetry.Encode(b, telemetry.CodecRows)
		if err != nil {
			panic(err)
		}
		payloads = append(payloads, p)
	}
	d.mu.Unlock()
	for _, p := range payloads {
		d.client.Publish(telemetry.UpTopic(d.id), 1, false, p) // lost on a dead node: sent again on the timeout
	}
	return done
}

func (d *clusterGateway) ackedBatches() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.acked)
}

// diagnose logs what is stuck: each partition's consumer, and each
// generated gateway's unacknowledged batches.
func diagnose(t *testing.T, cl *testenv.NATSCluster, gens []*clusterGateway) {
	nc, err := nats.Connect(strings.Join(cl.URLs(), ","))
	if err != nil {
		t.Logf("diagnose: %v", err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for k := 0; k < 8; k++ {
		c, err := js.Consumer(ctx, "FIELDWATCH_UP", fmt.Sprintf("ingest-p%d", k))
		if err != nil {
			t.Logf("partition %d: %v", k, err)
			continue
		}
		i := c.CachedInfo()
		t.Logf("partition %d: pending %d, ack pending %d, redelivered %d, waiting %d, groups %+v, leader %s", k,
			i.NumPending, i.NumAckPending, i.NumRedelivered, i.NumWaiting, i.PriorityGroups, i.Cluster.Leader)
	}
	for _, d := range gens {
		d.mu.Lock()
		if len(d.sent) > 0 {
			t.Logf("%s: unacknowledged %v", d.id, d.sent)
		}
		d.mu.Unlock()
	}
}

// TestClusterDrill: see the comment at the top of this file.
func TestClusterDrill(t *testing.T) {
	cl := testenv.StartNATS(t, 3)
	db := testenv.StartInfluxDB(t)
	proxyURL, writes := influxProxy(t, db.URL)

	type replica struct {
		cfg, http string
		p         *proc
	}
	var replicas []*replica
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		r := &replica{cfg: filepath.Join(dir, "cloud.yaml"), http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
		conf := fmt.Sprintf(clusterCloudConfig, filepath.Join(dir, "data"), r.http, proxyURL, db.TokenFile,
			strings.Join(cl.URLs(), ", ")) + noAlerting
		if err := os.WriteFile(r.cfg, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		r.p = start(t, "fieldwatch-cloud", "run", "-c", r.cfg)
		replicas = append(replicas, r)
	}
	for _, r := range replicas {
		waitHealthy(t, r.http)
	}

	// Three real gateways polling the simulator, each with every node's
	// MQTT listener.
	rig := &faultRig{t: t, db: db}
	env := &sim.Environment{Seed: 5}
	rig.sim, rig.simAddr = startSim(t, &served{}, map[uint8]sim.Device{
		1: &sim.SoilProbe{Env: env, Probe: 0}, 2: &sim.SoilProbe{Env: env, Probe: 1}, 10: &sim.AirSensor{Env: env}})
	var real []*faultGateway
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		g := &faultGateway{t: t, id: fmt.Sprintf("drill-real-%d", i), cfg: filepath.Join(dir, "gateway.yaml"),
			http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
		conf := fmt.Sprintf(faultGatewayConfig, g.id, strings.Join(cl.MQTTURLs(), ", "),
			smallBatches+"\n  ack_timeout: 3s\n  reconnect_max: 2s", filepath.Join(dir, "buffer"), "", g.http, rig.simAddr)
		if err := os.WriteFile(g.cfg, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		g.start()
		real = append(real, g)
	}
	rig.sensors(true)

	// Fifty generated gateways, spread over the nodes.
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	var gens []*clusterGateway
	for g := 0; g < 50; g++ {
		urls := cl.MQTTURLs()
		k := g % len(urls)
		gens = append(gens, newClusterGateway(t, g, append(urls[k:k+1:k+1], append(urls[:k:k], urls[k+1:]...)...), t0))
	}
	total := len(gens) * drillBatches
	acked := func() int {
		n := 0
		for _, d := range gens {
			n += d.ackedBatches()
		}
		return n
	}
	var nodeKilled, replicaKilled bool
	var replicaKilledAt time.Time
	deadline := time.Now().Add(4 * time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		done := true
		now := time.Now()
		for _, d := range gens {
			done = d.step(now) && done
		}
		if done {
			break
		}
		switch n := acked(); {
		case !nodeKilled && n >= total/4:
			t.Logf("%d of %d batches acknowledged: killing NATS node %s", n, total, cl.Nodes[1].Name)
			cl.Nodes[1].Kill()
			nodeKilled = true
		case nodeKilled && !replicaKilled && n >= total/2:
			t.Logf("%d of %d batches acknowledged: killing cloud replica 0", n, total)
			replicas[0].p.Stop(t, syscall.SIGKILL)
			replicaKilledAt = time.Now()
			replicaKilled = true
		}
		if time.Now().After(deadline) {
			diagnose(t, cl, gens)
			t.Fatalf("only %d of %d batches acknowledged after 4 minutes", acked(), total)
		}
		<-tick.C
	}
	if !nodeKilled || !replicaKilled {
		t.Fatalf("the stream ended before the faults (node killed %v, replica killed %v)", nodeKilled, replicaKilled)
	}
	for _, g := range real {
		g.waitAcked(1)
	}
	rig.sensors(false)
	for _, g := range real {
		rig.accountAll(g) // everything it appended is in InfluxDB once
	}

	// Every generated reading is stored.
	for _, d := range gens {
		if n, _, _ := rig.stored(d.id); n != drillBatches*drillPerBatch {
			t.Errorf("%s: InfluxDB holds %d readings, sent %d", d.id, n, drillBatches*drillPerBatch)
		}
	}
	// Writes: each point once, but for the killed replica's last groups.
	writes.mu.Lock()
	defer writes.mu.Unlock()
	var twice, twiceOutside int
	for key, at := range writes.writes {
		if len(at) < 2 {
			continue
		}
		twice++
		if !at[0].Before(replicaKilledAt) || at[len(at)-1].Before(replicaKilledAt) || len(at) > 2 {
			twiceOutside++
			if twiceOutside <= 5 {
				t.Errorf("point %s written %d times (%v), not across the replica's kill at %v", key, len(at), at,
					replicaKilledAt)
			}
		}
	}
	t.Logf("InfluxDB accepted %d point writes of the drill's gateways; %d points written twice, all across the "+
		"replica's kill (its data written, its commit record not)", writes.lines, twice)
	if twiceOutside > 0 {
		t.Fatalf("%d points written twice outside the killed replica's window", twiceOutside)
	}
}

// clusterAlerting judges the rules file (%s) alone and notifies the
// webhook (%s) at once.
const clusterAlerting = `alerting:
  packs: []
  rules: %s
  device_silent: {disabled: true}
  notify:
    group_wait: 0s
    group_interval: 1s
    receivers:
      - name: bureau
        alertmanager_webhook: {url: %s}
`

// TestClusterAlertMoves: an alert pending on one replica (for: 6s) moves
// with its gateway's partition when that replica is killed: the replica
// that takes the partition fires it on a low reading six seconds after the
// first (not six seconds after the move), and the bureau hears firing once
// and resolved once.
func TestClusterAlertMoves(t *testing.T) {
	cl := testenv.StartNATS(t, 3)
	db := testenv.StartInfluxDB(t)
	h, hookURL := startHook(t)
	rulesPath := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte(`rules:
  - id: pond_do_low
    kind: threshold
    standard: "GB 11607-89"
    input: {metric: dissolved_oxygen}
    labels: {alertname: PondDissolvedOxygenLow}
    for: 6s
    levels:
      - {severity: yellow, op: "<", set: 4, clear: 4.5}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	type replica struct {
		http string
		p    *proc
	}
	var replicas []*replica
	for i := 0; i < 2; i++ {
		dir := t.TempDir()
		r := &replica{http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
		cfg := filepath.Join(dir, "cloud.yaml")
		conf := fmt.Sprintf(clusterCloudConfig, filepath.Join(dir, "data"), r.http, db.URL, db.TokenFile,
			strings.Join(cl.URLs(), ", ")) + fmt.Sprintf(clusterAlerting, rulesPath, hookURL)
		if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		r.p = start(t, "fieldwatch-cloud", "run", "-c", cfg)
		replicas = append(replicas, r)
	}
	for _, r := range replicas {
		waitHealthy(t, r.http)
	}
	testenv.Eventually(t, "the partitions shared out", 30*time.Second, func() bool {
		total := 0.0
		for _, r := range replicas {
			m, err := testenv.Scrape("http://" + r.http + "/metrics")
			if err != nil || m["fieldwatch_nats_partitions_held"] == 0 {
				return false
			}
			total += m["fieldwatch_nats_partitions_held"]
		}
		return total == 8
	})
	alerts := func(r *replica) []apiAlert {
		var got []apiAlert
		if err := testenv.GetJSON("http://"+r.http+"/api/v1/alerts?state=all&rule=pond_do_low", &got); err != nil {
			t.Fatal(err)
		}
		return got
	}

	gw := newPondGateway(t, cl.MQTTURLs()[0])
	t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond) // event time, in the past: nothing waits for it
	gw.send(3.1, t0)
	var owner, other *replica
	for i, r := range replicas {
		if as := alerts(r); len(as) == 1 && as[0].State == "pending" && as[0].ActiveAt.Equal(t0) {
			owner, other = r, replicas[1-i]
		}
	}
	if owner == nil {
		t.Fatalf("no replica has the alert pending since %v: %+v, %+v", t0, alerts(replicas[0]), alerts(replicas[1]))
	}
	// Its state saved for the next holder before the kill.
	nc, err := nats.Connect(strings.Join(cl.URLs(), ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	testenv.Eventually(t, "gw1's alert state in the bucket", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		kv, err := js.KeyValue(ctx, "FIELDWATCH_UP_ALERTS")
		if err != nil {
			return false
		}
		keys, err := kv.Keys(ctx)
		return err == nil && slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, ".gw1") })
	})
	owner.p.Stop(t, syscall.SIGKILL)
	testenv.Eventually(t, "the other replica holds every partition", 60*time.Second, func() bool {
		m, err := testenv.Scrape("http://" + other.http + "/metrics")
		return err == nil && m["fieldwatch_nats_partitions_held"] == 8
	})
	gw.send(3.0, t0.Add(6*time.Second+100*time.Millisecond))
	if got := alerts(other); len(got) != 1 || got[0].State != "firing" || !got[0].ActiveAt.Equal(t0) {
		t.Fatalf("after the move, a low reading 6 s after the first: %+v; want firing, active since %v", got, t0)
	}
	testenv.Eventually(t, "firing notification", 30*time.Second, func() bool { return h.count() == 1 })
	gw.send(5.0, t0.Add(8*time.Second))
	testenv.Eventually(t, "resolved notification", 30*time.Second, func() bool { return h.count() == 2 })
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.msgs[0].Status != "firing" || h.msgs[1].Status != "resolved" || len(h.errs) > 0 {
		t.Fatalf("the bureau heard %v then %v (errors %v); want firing then resolved", h.msgs[0].Status,
			h.msgs[1].Status, h.errs)
	}
}
