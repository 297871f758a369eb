package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestDesiredConfigOutlivesRestart runs the real binaries — the cloud on
// its embedded defaults (its own MQTT broker, which keeps retained
// messages in memory, and SQLite) and a gateway polling three simulated
// Modbus units — and pushes a config to the gateway while it is stopped.
// The cloud is then restarted; the gateway, started after it, must still
// receive the config and run it: the cloud keeps every gateway's desired
// state (data_dir/desired.db) and publishes it again on the new broker.
func TestDesiredConfigOutlivesRestart(t *testing.T) {
	dir := t.TempDir()
	data := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	startCloud := func() *proc {
		p := start(t, "fieldwatch-cloud", "run", "-mqtt-listen", mqttAddr, "-http", httpAddr, "-data", data)
		waitHealthy(t, httpAddr)
		return p
	}
	cloud := startCloud()
	env := &sim.Environment{Seed: 23}
	_, simAddr := startSim(t, &served{}, map[uint8]sim.Device{
		1: &sim.SoilProbe{Env: env, Probe: 0}, 2: &sim.SoilProbe{Env: env, Probe: 1}, 10: &sim.AirSensor{Env: env}})

	key := filepath.Join(dir, "fleet.key")
	pub := keygen(t, key)

	const id = "gw-desired"
	g := &faultGateway{t: t, id: id, cfg: filepath.Join(dir, "gateway.yaml"),
		http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	conf := func(interval string) string {
		c := fmt.Sprintf(faultGatewayConfig, id, "tcp://"+mqttAddr, smallBatches, filepath.Join(dir, "buffer"), "", g.http, simAddr)
		return strings.ReplaceAll(c, "interval: 100ms", "interval: "+interval)
	}
	if err := os.WriteFile(g.cfg, []byte(conf("100ms")+fmt.Sprintf("fleet: {trusted_keys: [%q], grace: 10s}\n", pub)), 0o644); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(dir, "v1.yaml")
	if err := os.WriteFile(remote, []byte(conf("200ms")), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	g.waitAcked(30)
	g.p.Stop(t, syscall.SIGTERM)

	// Pushed while the gateway is away; then the cloud restarts, and its
	// broker with it.
	cloudCmd(t, "fleet", "push", "-api", "http://"+httpAddr, "-gateway", id, "-config", remote, "-key", key, "-version", "1")
	cloud.Stop(t, syscall.SIGTERM)
	cloud = startCloud()
	g.start()
	testenv.Eventually(t, "the gateway runs v1, pushed before the restart", 60*time.Second, func() bool {
		var s fleetStatus
		testenv.GetJSON("http://"+g.http+"/status", &s)
		if s.Fleet == nil || s.Fleet.Version != 1 || s.Fleet.Checking != 0 || len(s.Devices) != 3 || !s.allOK() {
			return false
		}
		for _, d := range s.Devices {
			if d.Interval != "200ms" {
				return false
			}
		}
		return true
	})
	if logs := cloud.Logs(); !strings.Contains(logs, "published the gateways' desired state again") ||
		!strings.Contains(logs, "items=1 of=1") {
		t.Errorf("the cloud did not report publishing the one item it keeps:\n%s", logs)
	}
}
