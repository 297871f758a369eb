package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// natsFleetCloud is the rest of a replica's nats section: the cloud user,
// and the MQTT listeners with the fleet user (passwords from files).
const natsFleetCloud = `  username: cloud
  password_file: %s
  mqtt:
    urls: [%s]
    username: fleet
    password_file: %s
`

// TestClusterFleetJourney runs the real binaries on a NATS JetStream
// cluster of three nodes with the shipped users and permissions: two
// cloud replicas sharing the partitions (one InfluxDB), and two gateways
// polling a Modbus simulator, each attached first to another node than the
// replicas' MQTT client. Then, with fieldwatch-cloud fleet and the API:
//
//   - a command (read) to each gateway through each replica is answered,
//     so through the replica that does not hold the gateway's partition
//     too (each partition has one holder, and both replicas hold some);
//   - a signed config pushed through one replica is applied and kept by
//     the gateway, and both replicas' APIs report the version running;
//   - a config changed after it was signed (bad signature) is refused and
//     counted by the gateway, which keeps its version, and both replicas
//     hear of the refusal;
//   - a release manifest changed after it was signed reaches the gateway
//     on its release topic and is refused and counted;
//   - rollouts are answered 501, saying why.
func TestClusterFleetJourney(t *testing.T) {
	gateways := []string{"nf-a", "nf-b"}
	// The shipped users and permissions (passwords "<user>-secret").
	cl := testenv.StartNATSWith(t, 3, testenv.ShippedNATSUsers(t, "../../deploy/nats/nats.conf", gateways...))
	db := testenv.StartInfluxDB(t)
	dir := t.TempDir()
	secret := func(name, value string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cloudPW, fleetPW := secret("nats.pw", "cloud-secret"), secret("fleet.pw", "fleet-secret")

	var replicas []string // their HTTP addresses
	for i := 0; i < 2; i++ {
		rdir := t.TempDir()
		addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		cfg := filepath.Join(rdir, "cloud.yaml")
		conf := fmt.Sprintf(clusterCloudConfig, filepath.Join(rdir, "data"), addr, db.URL, db.TokenFile,
			strings.Join(cl.URLs(), ", ")) + fmt.Sprintf(natsFleetCloud, cloudPW, strings.Join(cl.MQTTURLs(), ", "), fleetPW) +
			noAlerting
		if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		start(t, "fieldwatch-cloud", "run", "-c", cfg)
		replicas = append(replicas, addr)
	}
	for _, addr := range replicas {
		waitHealthy(t, addr)
	}
	testenv.Eventually(t, "the partitions shared out", 60*time.Second, func() bool {
		total := 0.0
		for _, addr := range replicas {
			m, err := testenv.Scrape("http://" + addr + "/metrics")
			if err != nil || m["fieldwatch_nats_partitions_held"] == 0 {
				return false
			}
			total += m["fieldwatch_nats_partitions_held"]
		}
		return total == 8
	})

	key := filepath.Join(dir, "fleet.key")
	pub := keygen(t, key)
	env := &sim.Environment{Seed: 17}
	_, simAddr := startSim(t, &served{}, map[uint8]sim.Device{
		1: &sim.SoilProbe{Env: env, Probe: 0}, 2: &sim.SoilProbe{Env: env, Probe: 1}, 10: &sim.AirSensor{Env: env}})
	mqttURLs := cl.MQTTURLs()
	gws := map[string]*faultGateway{}
	config := func(id, http, interval string) string {
		// Attached first to node 2 or 3; the replicas' MQTT client to node 1.
		k := 1 + slices.Index(gateways, id)%2
		brokers := append(append([]string{mqttURLs[k]}, mqttURLs[:k]...), mqttURLs[k+1:]...)
		c := fmt.Sprintf(faultGatewayConfig, id, strings.Join(brokers, ", "),
			smallBatches+fmt.Sprintf("\n  username: %s\n  password: %s-secret", id, id), filepath.Join(dir, id, "buffer"), "",
			http, simAddr)
		return strings.ReplaceAll(c, "interval: 100ms", "interval: "+interval)
	}
	for _, id := range gateways {
		g := &faultGateway{t: t, id: id, cfg: filepath.Join(dir, id+".yaml"), http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
		local := config(id, g.http, "100ms") + fmt.Sprintf("fleet: {trusted_keys: [%q], grace: 20s}\n", pub)
		if err := os.MkdirAll(filepath.Join(dir, id), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(g.cfg, []byte(local), 0o644); err != nil {
			t.Fatal(err)
		}
		g.start()
		gws[id] = g
	}
	for _, g := range gws {
		g.waitAcked(30)
	}
	status := func(g *faultGateway) (s fleetStatus) {
		testenv.GetJSON("http://"+g.http+"/status", &s)
		return s
	}
	for _, g := range gws {
		testenv.Eventually(t, g.id+": every device ok", 60*time.Second, func() bool { return status(g).allOK() })
	}

	// Commands: every gateway through every replica.
	for _, id := range gateways {
		for _, addr := range replicas {
			cmd := exec.Command(filepath.Join(bins, "fieldwatch-cloud"), "fleet", "command", "-api", "http://"+addr,
				"-gateway", id, "-key", key, "read", "soil-a")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.Output()
			var rec commandRecord
			if jerr := json.Unmarshal(stdout, &rec); err != nil || jerr != nil || rec.Reply == nil ||
				rec.Reply.Result != telemetry.ReplyOK || len(rec.Reply.Readings) == 0 {
				t.Fatalf("read soil-a of %s through %s: %v %s\n%s", id, addr, err, stdout, stderr.Bytes())
			}
		}
	}

	// A signed config through one replica, another gateway's through the
	// other: applied, kept, reported to both replicas.
	cloudConfig := func(addr, id string) *telemetry.ConfigState {
		var st struct {
			Config *telemetry.ConfigState `json:"config"`
		}
		testenv.GetJSON("http://"+addr+"/api/v1/stations/"+id, &st)
		return st.Config
	}
	for i, id := range gateways {
		g := gws[id]
		path := filepath.Join(dir, id+"-v1.yaml")
		if err := os.WriteFile(path, []byte(config(id, g.http, "200ms")), 0o644); err != nil {
			t.Fatal(err)
		}
		cloudCmd(t, "fleet", "push", "-api", "http://"+replicas[i%2], "-gateway", id, "-config", path, "-key", key,
			"-version", "1")
	}
	for _, id := range gateways {
		g := gws[id]
		testenv.Eventually(t, id+": v1 applied and kept", 60*time.Second, func() bool {
			s := status(g)
			return s.Fleet != nil && s.Fleet.Version == 1 && s.Fleet.Checking == 0 && s.allOK() &&
				len(s.Devices) == 3 && s.Devices[0].Interval == "200ms"
		})
		for _, addr := range replicas {
			testenv.Eventually(t, id+": "+addr+" knows v1 runs", 60*time.Second, func() bool {
				c := cloudConfig(addr, id)
				return c != nil && c.Version == 1 && c.Source == "remote"
			})
		}
	}

	// A config changed after it was signed: published (the cloud checks
	// no signature), refused and counted by the gateway.
	id, g := gateways[0], gws[gateways[0]]
	envl := telemetry.SignConfig(telemetry.ConfigEnvelope{Gateway: id, Version: 2, Issued: time.Now(),
		Config: config(id, g.http, "300ms")}, readKey(t, key))
	envl.Config = config(id, g.http, "50ms") // not what was signed
	forged, err := telemetry.EncodeConfig(envl)
	if err != nil {
		t.Fatal(err)
	}
	put(t, "http://"+replicas[1]+"/api/v1/stations/"+id+"/config", forged)
	testenv.Eventually(t, "bad signature refused and counted", 60*time.Second, func() bool {
		s := status(g)
		return s.Fleet != nil && s.Fleet.Refused["bad_signature"] == 1 &&
			metric(t, "http://"+g.http+"/metrics", `fieldwatch_gateway_fleet_configs_total{result="bad_signature"}`) == 1
	})
	if s := status(g); s.Fleet.Version != 1 || s.Devices[0].Interval != "200ms" {
		t.Fatalf("a refused config changed the gateway: %+v", s)
	}
	for _, addr := range replicas {
		testenv.Eventually(t, addr+" hears of the refusal", 60*time.Second, func() bool {
			c := cloudConfig(addr, id)
			return c != nil && c.Version == 1 && strings.HasPrefix(c.Error, "bad_signature")
		})
	}

	// A release manifest changed after it was signed, on the other
	// gateway's release topic: refused and counted.
	target := runtime.GOOS + "/" + runtime.GOARCH
	rel := telemetry.SignRelease(telemetry.Release{Version: "9.9.9", Serial: 5, Issued: time.Now(), Gateways: []string{gateways[1]},
		Artifacts: []telemetry.Artifact{{Target: target, URL: "http://" + replicas[0] + "/releases/" + strings.Repeat("ab", 32),
			Size: 1, SHA256: strings.Repeat("ab", 32)}}}, readKey(t, key))
	rel.Version = "9.9.10" // not what was signed
	manifest, err := telemetry.EncodeRelease(rel)
	if err != nil {
		t.Fatal(err)
	}
	put(t, "http://"+replicas[0]+"/api/v1/stations/"+gateways[1]+"/release", manifest)
	testenv.Eventually(t, "forged manifest refused and counted", 60*time.Second, func() bool {
		return metric(t, "http://"+gws[gateways[1]].http+"/metrics", `fieldwatch_gateway_updates_total{result="bad_signature"}`) == 1
	})

	// Rollouts: 501, saying why.
	resp, err := http.Get("http://" + replicas[0] + "/api/v1/rollouts")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(body), "on NATS") {
		t.Fatalf("GET /api/v1/rollouts: %d %s", resp.StatusCode, body)
	}
}

// put PUTs body to url and fails the test unless it is answered 200.
func put(t *testing.T, url string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s: %d %s", url, resp.StatusCode, b)
	}
}
