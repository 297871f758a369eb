package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// The fault tests break one part of the system at a time while a gateway
// polls and sends, then let everything settle and count: every item the
// gateway appended to its buffer (its next sequence − 1, across restarts)
// must be in InfluxDB exactly once — each reading is one point, its series
// and time unique, so the point count equals the appended count only if
// nothing was lost and nothing stored twice under another key — or be
// accounted for by a gap event when a disk budget forced a drop.
//
// Under `make test` the outages are short; FIELDWATCH_SOAK=1 (`make soak`)
// runs them at the lengths the design names: 60 s outages.
//
// Each scenario also records its recovery: the time from the fault's end
// (the gateway, broker or cloud started again, InfluxDB back) until
// everything the gateway had acquired by then is acknowledged — stored:
// the cloud acknowledges only what is durable, and the accounting checks
// the store afterwards. The gateway runs with the default ack_timeout
// (30 s) and reconnect_max (1 m), so a recovery that waited for either
// shows. The figures are logged, listed at the end, and appended to the
// file FIELDWATCH_RECOVERY_FILE names, if set; docs/benchmarks.md keeps
// them. They are recorded, never asserted: this machine is shared.

// outage is how long a broker or database stays down.
func outage() time.Duration {
	if os.Getenv("FIELDWATCH_SOAK") != "" {
		return 60 * time.Second
	}
	return 8 * time.Second
}

const faultGatewayConfig = `gateway:
  id: %s
  site: faults
uplink:
  brokers: [%s]
  connect_timeout: 2s
  state_interval: 5s
%s
buffer:
  dir: %s
  fsync: always
%s
http:
  listen: %s
buses:
  - name: dtu
    type: tcp
    address: %s
    timeout: 300ms
    devices:
      - {id: soil-a, profile: renke/rs-ecth-n01, unit: 1, interval: 100ms}
      - {id: soil-b, profile: renke/rs-ecth-n01, unit: 2, interval: 100ms}
      - {id: air-1, profile: renke/rs-ws-n01-8, unit: 10, interval: 100ms}
`

// faultRig is Mosquitto, InfluxDB, the cloud binary and a Modbus
// simulator, shared by the fault scenarios, which run one after another.
type faultRig struct {
	t         *testing.T
	mosq      *testenv.Mosquitto
	db        *testenv.InfluxDB
	sim       *sim.Server
	simAddr   string
	cloud     *proc
	cloudHTTP string
	cloudData string

	recoveries []recovery
}

// recovery is one scenario's recovery figure.
type recovery struct {
	scenario string
	took     time.Duration
}

func newFaultRig(t *testing.T) *faultRig {
	r := &faultRig{t: t, mosq: testenv.StartMosquitto(t), db: testenv.StartInfluxDB(t), cloudData: t.TempDir(),
		cloudHTTP: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	env := &sim.Environment{Seed: 11}
	r.sim, r.simAddr = startSim(t, &served{}, map[uint8]sim.Device{
		1: &sim.SoilProbe{Env: env, Probe: 0}, 2: &sim.SoilProbe{Env: env, Probe: 1}, 10: &sim.AirSensor{Env: env}})
	r.startCloud()
	return r
}

// startCloud starts the cloud and waits until it is subscribed; it returns
// when it started it.
func (r *faultRig) startCloud() time.Time {
	r.cloud = start(r.t, "fieldwatch-cloud", "run", "-mqtt-url", r.mosq.URL, "-influx-url", r.db.URL,
		"-influx-token-file", r.db.TokenFile, "-influx-bucket", r.db.Bucket, "-http", r.cloudHTTP, "-data", r.cloudData)
	started := time.Now()
	waitHealthy(r.t, r.cloudHTTP)
	return started
}

// recovered waits until everything g had acquired when the fault ended
// (at end) is acknowledged, and records how long after end that was.
func (r *faultRig) recovered(g *faultGateway, scenario string, end time.Time) {
	g.t.Helper()
	var acquired uint64
	testenv.Eventually(g.t, g.id+": status after the fault", 60*time.Second, func() bool {
		st, ok := g.status()
		acquired = st.Buffer.NextSeq - 1
		return ok
	})
	testenv.Eventually(g.t, fmt.Sprintf("%s: the %d items acquired by the fault's end acknowledged", g.id, acquired),
		120*time.Second, func() bool {
			st, ok := g.status()
			return ok && st.Buffer.AckedThrough >= acquired
		})
	took := time.Since(end)
	r.recoveries = append(r.recoveries, recovery{scenario, took})
	g.t.Logf("recovery: %s: everything acquired stored %.2f s after the fault ended", scenario, took.Seconds())
	if f := os.Getenv("FIELDWATCH_RECOVERY_FILE"); f != "" {
		out, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			g.t.Fatal(err)
		}
		defer out.Close()
		if _, err := fmt.Fprintf(out, "%s\t%s\toutage %v\t%.2f s\n", time.Now().UTC().Format(time.RFC3339), scenario,
			outage(), took.Seconds()); err != nil {
			g.t.Fatal(err)
		}
	}
}

// sensors switches the simulated units on or off.
func (r *faultRig) sensors(on bool) {
	for _, u := range []uint8{1, 2, 10} {
		r.sim.SetDead(u, !on)
	}
}

// faultGateway is one scenario's gateway, restartable on the same buffer.
type faultGateway struct {
	t    *testing.T
	id   string
	cfg  string
	http string
	p    *proc
}

func (r *faultRig) gateway(t *testing.T, id, bufferExtra string) *faultGateway {
	return r.gatewayOn(t, id, r.mosq.URL, smallBatches, bufferExtra)
}

// smallBatches are the fault gateways' batches: many, so that a kill or an
// outage falls in the middle of some.
const smallBatches = "  batch_size: 50\n  batch_delay: 200ms"

// gatewayOn is gateway, connecting to broker, with more uplink settings.
func (r *faultRig) gatewayOn(t *testing.T, id, broker, uplinkExtra, bufferExtra string) *faultGateway {
	dir := t.TempDir()
	g := &faultGateway{t: t, id: id, cfg: filepath.Join(dir, "gateway.yaml"),
		http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	conf := fmt.Sprintf(faultGatewayConfig, id, broker, uplinkExtra, filepath.Join(dir, "buffer"), bufferExtra, g.http,
		r.simAddr)
	if err := os.WriteFile(g.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r.sensors(true)
	g.start()
	return g
}

func (g *faultGateway) start() { g.p = start(g.t, "fieldwatch-gateway", "run", "-c", g.cfg) }

func (g *faultGateway) status() (gatewayStatus, bool) {
	var st gatewayStatus
	return st, testenv.GetJSON("http://"+g.http+"/status", &st) == nil
}

// waitAcked waits until at least n items are acknowledged.
func (g *faultGateway) waitAcked(n uint64) {
	g.t.Helper()
	testenv.Eventually(g.t, fmt.Sprintf("%s: %d items acknowledged", g.id, n), 60*time.Second, func() bool {
		st, ok := g.status()
		return ok && st.Buffer.AckedThrough >= n
	})
}

// settle stops the sensors and waits until everything the gateway holds is
// acknowledged; it returns how many items the gateway ever appended.
func (r *faultRig) settle(g *faultGateway) uint64 {
	g.t.Helper()
	r.sensors(false)
	var st gatewayStatus
	testenv.Eventually(g.t, g.id+": buffer emptied by acks", 120*time.Second, func() bool {
		var ok bool
		st, ok = g.status()
		return ok && st.Buffer.Readings == 0 && st.Buffer.AckedThrough == st.Buffer.NextSeq-1
	})
	return st.Buffer.NextSeq - 1
}

// stored counts what InfluxDB holds for gateway: readings (value points),
// events, and the items gap events say were dropped.
func (r *faultRig) stored(gateway string) (readings, events, dropped int64) {
	r.t.Helper()
	client := influxdb2.NewClient(r.db.URL, r.db.Token)
	defer client.Close()
	sum := func(filter, agg string) int64 {
		q := fmt.Sprintf(`from(bucket: "db/autogen")
  |> range(start: 1970-01-01T00:00:00Z)
  |> filter(fn: (r) => r.gateway == %q and %s)
  |> group()
  |> %s()`, gateway, filter, agg)
		res, err := client.QueryAPI("").Query(context.Background(), q)
		if err != nil {
			r.t.Fatalf("flux: %v\n%s", err, q)
		}
		var n int64
		for res.Next() {
			switch v := res.Record().Value().(type) {
			case int64:
				n += v
			case float64:
				n += int64(v)
			}
		}
		if res.Err() != nil {
			r.t.Fatalf("flux: %v\n%s", res.Err(), q)
		}
		return n
	}
	readings = sum(`r._field == "value"`, "count")
	events = sum(`r._measurement == "event" and r._field == "clock"`, "count")
	dropped = sum(`r._measurement == "event" and r.kind == "gap" and r._field == "count"`, "sum")
	return readings, events, dropped
}

// account checks that what the gateway appended is what InfluxDB holds,
// plus what gap events say was dropped; it returns the dropped count.
func (r *faultRig) account(g *faultGateway) int64 {
	g.t.Helper()
	appended := r.settle(g)
	readings, events, dropped := r.stored(g.id)
	g.t.Logf("%s: appended %d items; InfluxDB holds %d readings and %d events; gap events account for %d dropped",
		g.id, appended, readings, events, dropped)
	if readings+events+dropped != int64(appended) {
		g.t.Fatalf("%s: appended %d items but InfluxDB holds %d readings + %d events and gaps account for %d: %+d",
			g.id, appended, readings, events, dropped, readings+events+dropped-int64(appended))
	}
	return dropped
}

// accountAll is account where no budget forced a drop: every item
// appended is in InfluxDB.
func (r *faultRig) accountAll(g *faultGateway) {
	g.t.Helper()
	if dropped := r.account(g); dropped != 0 {
		g.t.Fatalf("%s: gap events say %d items were dropped; nothing should have been", g.id, dropped)
	}
}

// metric reads one series from a Prometheus text endpoint (0 if absent).
func metric(t *testing.T, url, series string) float64 {
	t.Helper()
	m, err := testenv.Scrape(url)
	if err != nil {
		t.Fatal(err)
	}
	return m[series]
}

func TestFaults(t *testing.T) {
	r := newFaultRig(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FIELDWATCH_FAULT_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("random moments from seed %d (FIELDWATCH_FAULT_SEED to repeat)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Cleanup(func() {
		for _, rc := range r.recoveries {
			t.Logf("recovery after %-60s %6.2f s", rc.scenario+":", rc.took.Seconds())
		}
	})

	t.Run("gateway killed at 20 random moments", func(t *testing.T) {
		g := r.gateway(t, "gw-kill", "")
		g.waitAcked(20)
		for range 20 {
			time.Sleep(time.Duration(100+rng.IntN(1400)) * time.Millisecond)
			g.p.Stop(t, syscall.SIGKILL)
			g.start()
		}
		r.recovered(g, "gateway killed (the last of 20 restarts)", time.Now())
		r.accountAll(g)
	})

	t.Run("gateway killed after its batches were stored, before their acks", func(t *testing.T) {
		// A proxy between the gateway and the broker holds the acks back:
		// the cloud stores the batches, the gateway never hears it. Killed
		// and started again, the gateway sends them again — replays — under
		// a new compact context, which they define; the cloud must keep
		// that definition, for the batches that follow refer to it: none
		// may be refused for an unknown context (issue 18).
		// Full batches (a long batch_delay), so that the window of four
		// stored without their acks holds as many as the backlog may send
		// at once after the restart, three: those are all replays, and the
		// next batch, sent on their first ack, refers to the context they
		// defined. Backlog batches of 50 too, so the resent ones are the
		// stored batches again, not one larger batch overlapping them.
		link := testenv.StartProxy(t, r.mosq.Addr)
		g := r.gatewayOn(t, "gw-replay", link.URL(), "  batch_size: 50\n  backlog_batch_size: 50\n  batch_delay: 5s", "")
		g.waitAcked(20)
		cloud := "http://" + r.cloudHTTP + "/metrics"
		const unknown = `fieldwatch_ingest_rejected_total{reason="unknown_context"}`
		refused, replays := metric(t, cloud, unknown), metric(t, cloud, "fieldwatch_ingest_duplicates_total")
		link.HoldReplies()
		testenv.Eventually(t, "three batches stored whose acks are held back", 60*time.Second, func() bool {
			st, ok := g.status()
			readings, events, _ := r.stored(g.id)
			return ok && uint64(readings+events) >= st.Buffer.AckedThrough+150
		})
		g.p.Stop(t, syscall.SIGKILL)
		link.Thaw()
		g.start()
		r.recovered(g, "gateway killed after its batches were stored, before their acks", time.Now())
		st, _ := g.status()
		g.waitAcked(st.Buffer.NextSeq + 100) // batches that refer to the new context
		if n := metric(t, cloud, "fieldwatch_ingest_duplicates_total"); n <= replays {
			t.Fatalf("no replay after the restart (%v before, %v after): the scenario did not happen", replays, n)
		}
		if n := metric(t, cloud, unknown); n != refused {
			t.Errorf("%v batches refused for an unknown compact context after the restart", n-refused)
		}
		if n := metric(t, "http://"+g.http+"/metrics", "fieldwatch_gateway_uplink_resyncs_total"); n != 0 {
			t.Errorf("the gateway defined its context again %v times after the restart", n)
		}
		r.accountAll(g)
	})

	t.Run("broker down and restarted without persistence", func(t *testing.T) {
		g := r.gateway(t, "gw-broker", "")
		g.waitAcked(20)
		r.mosq.Stop()
		time.Sleep(outage())
		r.mosq.Start(t)
		r.recovered(g, "broker restarted without persistence", time.Now())
		r.accountAll(g)
	})

	t.Run("ingestor killed and restarted mid-stream", func(t *testing.T) {
		g := r.gateway(t, "gw-ingest", "")
		for range 3 {
			st, _ := g.status()
			g.waitAcked(st.Buffer.AckedThrough + 20)
			time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
			r.cloud.Stop(t, syscall.SIGKILL)
			time.Sleep(2 * time.Second)
			r.recovered(g, "ingestor killed, restarted 2 s later", r.startCloud())
		}
		r.accountAll(g)
	})

	t.Run("InfluxDB down: nothing acknowledged that is not stored", func(t *testing.T) {
		g := r.gateway(t, "gw-influx", "")
		g.waitAcked(20)
		errsBefore := metric(t, "http://"+r.cloudHTTP+"/metrics", "fieldwatch_ingest_store_errors_total")
		r.db.Stop()
		stopped := time.Now()
		var down gatewayStatus
		testenv.Eventually(t, "the gateway's status", 30*time.Second, func() bool {
			var ok bool
			down, ok = g.status()
			return ok
		})
		// While InfluxDB is down the cloud tries to store, and fails, and
		// the gateway keeps acquiring.
		testenv.Eventually(t, "store errors counted while InfluxDB is down", 60*time.Second, func() bool {
			m, err := testenv.Scrape("http://" + r.cloudHTTP + "/metrics")
			return err == nil && m["fieldwatch_ingest_store_errors_total"] > errsBefore
		})
		testenv.Eventually(t, "the gateway acquires while InfluxDB is down", 60*time.Second, func() bool {
			st, ok := g.status()
			return ok && st.Buffer.NextSeq > down.Buffer.NextSeq
		})
		time.Sleep(time.Until(stopped.Add(outage()))) // the rest of the outage
		// Acks may still arrive during the outage, for what was stored
		// before it (one in flight, or a resend acknowledged from the
		// commit record); what must not be is an ack for anything not
		// stored. With the cloud paused, nothing more can be stored or
		// acknowledged: everything the gateway holds acknowledged must
		// then be in InfluxDB.
		if err := r.cloud.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		r.db.Start(t)
		readings, events, _ := r.stored(g.id)
		acked, ok := g.status()
		if err := r.cloud.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		r.recovered(g, "InfluxDB down", time.Now())
		if !ok {
			t.Fatal("no status from the gateway")
		}
		if uint64(readings+events) < acked.Buffer.AckedThrough {
			t.Errorf("the gateway holds %d items acknowledged, InfluxDB only %d (%d readings, %d events): "+
				"acknowledged while InfluxDB was down, not stored", acked.Buffer.AckedThrough, readings+events, readings, events)
		}
		r.accountAll(g)
	})

	t.Run("InfluxDB down and back, the cloud running", func(t *testing.T) {
		// The scenario above pauses the cloud while InfluxDB comes back;
		// this one does not, so its recovery counts from InfluxDB's return,
		// the cloud holding and retrying writes, or refusing with a hint.
		// The gateway's batches are of the default size (500), so the
		// figure is not mostly the drain of small batches.
		g := r.gatewayOn(t, "gw-influx-back", r.mosq.URL, "  batch_delay: 200ms", "")
		g.waitAcked(20)
		cloud := "http://" + r.cloudHTTP + "/metrics"
		retries := metric(t, cloud, "fieldwatch_ingest_store_retries_total")
		r.db.Stop()
		stopped := time.Now()
		testenv.Eventually(t, "store writes failing and retried", 60*time.Second, func() bool {
			return metric(t, cloud, "fieldwatch_ingest_store_retries_total") > retries
		})
		time.Sleep(time.Until(stopped.Add(outage()))) // the rest of the outage
		r.db.Start(t)
		r.recovered(g, "InfluxDB down, then back (the cloud running)", time.Now())
		r.accountAll(g)
	})

	t.Run("disk budget too small for the outage", func(t *testing.T) {
		g := r.gateway(t, "gw-budget", "  segment_bytes: 4KiB\n  max_bytes: 16KiB")
		g.waitAcked(20)
		r.mosq.Stop()
		gaps := "http://" + g.http + "/metrics"
		testenv.Eventually(t, "the buffer dropped its oldest segment", 60*time.Second, func() bool {
			return metric(t, gaps, "fieldwatch_gateway_buffer_gap_events") >= 2
		})
		r.mosq.Start(t)
		r.recovered(g, "broker down past the disk budget", time.Now())
		dropped := r.account(g)
		if dropped == 0 {
			t.Fatal("no gap event reached InfluxDB")
		}
		if m := metric(t, gaps, "fieldwatch_gateway_buffer_dropped_readings"); m != float64(dropped) {
			t.Errorf("the gateway counted %v items dropped, its gap events %d", m, dropped)
		}
	})
}
