package e2e

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// fleetStatus is the fleet part of the gateway's /status.
type fleetStatus struct {
	Devices []struct {
		ID       string `json:"id"`
		Unit     int    `json:"unit"`
		Interval string `json:"interval"`
		Health   string `json:"health"`
	} `json:"devices"`
	Fleet *struct {
		telemetry.ConfigState
		Refused map[string]uint64 `json:"refused"`
	} `json:"fleet"`
}

// allOK says every device of s is healthy.
func (s fleetStatus) allOK() bool {
	for _, d := range s.Devices {
		if d.Health != "ok" {
			return false
		}
	}
	return true
}

// cloudCmd runs a fieldwatch-cloud command to its end and returns its
// output, failing the test if it fails.
func cloudCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(bins, "fieldwatch-cloud"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("fieldwatch-cloud %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestRemoteConfigJourney runs the real binaries — the cloud on Mosquitto
// and InfluxDB, a gateway polling three simulated Modbus units every
// 100 ms — and changes the gateway's configuration from the cloud with
// `fieldwatch-cloud fleet keygen` and `fleet push`:
//
//   - a good config (every interval 200 ms) is applied and kept, and its
//     version reaches the cloud's stations API;
//   - a config signed by a key the gateway does not trust, a replay of an
//     older version, and an envelope for another gateway (published on
//     this gateway's topic straight into the broker) are refused and
//     counted, and the last error reaches the cloud;
//   - a config with wrong unit ids, which breaks polling, is rolled back by
//     the gateway when its grace period ends, and the rollback reaches the
//     cloud;
//   - every item the gateway appended across both changes is in InfluxDB
//     exactly once (counted as the fault tests count).
func TestRemoteConfigJourney(t *testing.T) {
	r := newFaultRig(t)
	dir := t.TempDir()
	key, stranger := filepath.Join(dir, "fleet.key"), filepath.Join(dir, "stranger.key")
	out := cloudCmd(t, "fleet", "keygen", "-key", key)
	pub := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	if _, err := telemetry.ParsePublicKey(pub); err != nil {
		t.Fatalf("keygen printed %q: %v", out, err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if data, _ := os.ReadFile(key); strings.Contains(out, strings.Split(string(data), "\n")[1]) {
		t.Fatal("keygen printed the private key")
	}
	cloudCmd(t, "fleet", "keygen", "-key", stranger)

	const id = "gw-fleet"
	g := &faultGateway{t: t, id: id, cfg: filepath.Join(dir, "gateway.yaml"),
		http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	buffer := filepath.Join(dir, "buffer")
	// remote is the gateway's config as the cloud sends it: the fault
	// gateway's, with every interval and unit id changed as asked.
	remote := func(name, interval string, unitOffset int) string {
		c := fmt.Sprintf(faultGatewayConfig, id, r.mosq.URL, smallBatches, buffer, "", g.http, r.simAddr)
		c = strings.ReplaceAll(c, "interval: 100ms", "interval: "+interval)
		for _, u := range []int{10, 2, 1} {
			c = strings.Replace(c, fmt.Sprintf("unit: %d,", u), fmt.Sprintf("unit: %d,", u+unitOffset), 1)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	local := fmt.Sprintf(faultGatewayConfig, id, r.mosq.URL, smallBatches, buffer, "", g.http, r.simAddr) +
		fmt.Sprintf("fleet: {trusted_keys: [%q], grace: 20s}\n", pub)
	if err := os.WriteFile(g.cfg, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	r.sensors(true)
	g.start()
	g.waitAcked(30)
	status := func() (s fleetStatus) {
		testenv.GetJSON("http://"+g.http+"/status", &s)
		return s
	}
	running := func(interval string, unit int) bool {
		s := status()
		if len(s.Devices) != 3 {
			return false
		}
		for _, d := range s.Devices {
			if d.Interval != interval || d.Health != "ok" || (d.ID == "soil-a" && d.Unit != unit) {
				return false
			}
		}
		return true
	}
	testenv.Eventually(t, "every device ok", 60*time.Second, func() bool { return running("100ms", 1) })
	var st struct {
		Config *telemetry.ConfigState `json:"config"`
	}
	cloudConfig := func() *telemetry.ConfigState {
		st.Config = nil
		testenv.GetJSON("http://"+r.cloudHTTP+"/api/v1/stations/"+id, &st)
		return st.Config
	}
	push := func(version int, key, config string) {
		cloudCmd(t, "fleet", "push", "-api", "http://"+r.cloudHTTP, "-gateway", id, "-config", config, "-key", key,
			"-version", fmt.Sprint(version))
	}

	// (a) A good config, applied and kept; its version reaches the cloud.
	push(1, key, remote("v1.yaml", "200ms", 0))
	testenv.Eventually(t, "v1 applied and kept", 60*time.Second, func() bool {
		s := status()
		return running("200ms", 1) && s.Fleet != nil && s.Fleet.Version == 1 && s.Fleet.Checking == 0
	})
	testenv.Eventually(t, "the cloud knows v1 runs", 60*time.Second, func() bool {
		c := cloudConfig()
		return c != nil && c.Version == 1 && c.Source == "remote"
	})

	// (b) Refused and counted: an untrusted key, a replay of an older
	// version, an envelope for another gateway.
	refused := func(reason string) func() bool {
		return func() bool { s := status(); return s.Fleet != nil && s.Fleet.Refused[reason] == 1 }
	}
	push(2, stranger, remote("v2.yaml", "300ms", 0))
	testenv.Eventually(t, "untrusted key refused", 60*time.Second, refused("unknown_key"))
	push(1, key, remote("v1-again.yaml", "300ms", 0))
	testenv.Eventually(t, "replayed version refused", 60*time.Second, refused("old_version"))
	text, _ := os.ReadFile(remote("other.yaml", "300ms", 0))
	other, err := telemetry.EncodeConfig(telemetry.SignConfig(telemetry.ConfigEnvelope{Gateway: "gw-other", Version: 9,
		Issued: time.Now(), Config: string(text)}, readKey(t, key)))
	if err != nil {
		t.Fatal(err)
	}
	mq := testenv.MQTTClient(t, r.mosq.URL, "intruder")
	if tok := mq.Publish(telemetry.ConfigTopic(id), 1, true, other); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	testenv.Eventually(t, "envelope for another gateway refused", 60*time.Second, refused("other_gateway"))
	testenv.Eventually(t, "the cloud hears of the last refusal", 60*time.Second, func() bool {
		c := cloudConfig()
		return c != nil && strings.HasPrefix(c.Error, "other_gateway") && c.Version == 1
	})
	if !running("200ms", 1) {
		t.Fatalf("a refused config changed the gateway: %+v", status())
	}

	// (c) A config that breaks polling (no units 21, 22, 30 on the line):
	// applied, then rolled back when its 20 s grace period ends.
	push(3, key, remote("v3.yaml", "150ms", 20))
	testenv.Eventually(t, "v3 under its health check", 60*time.Second, func() bool {
		s := status()
		return s.Fleet != nil && s.Fleet.Checking == 3
	})
	testenv.Eventually(t, "v3 rolled back to v1", 120*time.Second, func() bool {
		s := status()
		return s.Fleet != nil && s.Fleet.Rollback != nil && s.Fleet.Version == 1 && running("200ms", 1)
	})
	if rb := status().Fleet.Rollback; rb.From != 3 || rb.To != 1 || !strings.Contains(rb.Reason, "no reading from") {
		t.Errorf("rollback %+v", rb)
	}
	testenv.Eventually(t, "the cloud knows of the rollback", 60*time.Second, func() bool {
		c := cloudConfig()
		return c != nil && c.Version == 1 && c.Rollback != nil && c.Rollback.From == 3 && c.Rollback.To == 1
	})

	// (d) Nothing lost, nothing stored twice across apply and rollback,
	// with v1 polling again after it.
	if gs, ok := g.status(); ok {
		g.waitAcked(gs.Buffer.NextSeq + 30)
	}
	r.accountAll(g)
}

// keygen makes a signing key at path with fieldwatch-cloud fleet keygen
// and returns its public half, as keygen prints it last.
func keygen(t *testing.T, path string) string {
	t.Helper()
	out := strings.TrimSpace(cloudCmd(t, "fleet", "keygen", "-key", path))
	return out[strings.LastIndex(out, "\n")+1:]
}

// readKey reads a private key fieldwatch-cloud fleet keygen wrote.
func readKey(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
}
