package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

const fleetTemplate = `gateway: {id: gw-fleet, site: s1}
uplink: {brokers: ["%s"], state_interval: 1s}
buffer: {dir: %s, fsync: "off"}
http: {listen: "127.0.0.1:0"}
buses:
  - name: b
    type: tcp
    address: %s
    quarantine: {after: 1}
    devices:
      - {id: soil-1, profile: renke/rs-ecth-n01, unit: %d, interval: %s}
`

// TestRemoteConfig runs the gateway in-process against real Mosquitto and
// a simulated soil probe, and sends it remote configs on its config
// topic: a good one is applied and kept; one signed by an unknown key, one
// for another gateway, a replay of an older version and an invalid one are
// refused and counted; one that breaks polling is rolled back when its
// grace period ends.
func TestRemoteConfig(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	srv := sim.NewServer(nil)
	srv.AddUnit(1, &sim.SoilProbe{Env: &sim.Environment{}})
	simAddr := sim.Listen(t, srv)
	dir := t.TempDir()
	buf := filepath.Join(dir, "buf")
	yaml := func(unit int, interval string) string {
		return fmt.Sprintf(fleetTemplate, mosq.URL, buf, simAddr, unit, interval)
	}
	trusted := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	stranger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	local := yaml(1, "1s") + fmt.Sprintf("fleet: {trusted_keys: [%q], grace: 15s, dir: %s}\n",
		telemetry.FormatPublicKey(trusted.Public().(ed25519.PublicKey)), filepath.Join(dir, "fleet"))
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: path, Log: slog.New(slog.DiscardHandler), Reload: make(chan struct{}),
			Listening: func(a string) { addr <- a }})
	}()
	base := "http://" + <-addr
	status := func() (s Status) {
		if code, body := get(t, base+"/status"); code == http.StatusOK {
			json.Unmarshal([]byte(body), &s)
		}
		return s
	}
	healthy := func(interval string) func() bool {
		return func() bool {
			s := status()
			return len(s.Devices) == 1 && s.Devices[0].Interval == interval && s.Devices[0].Health == "ok" && s.Connected
		}
	}
	testenv.Eventually(t, "running on the local file", wait, healthy("1s"))

	// The state the gateway publishes, as the cloud reads it.
	states := make(chan telemetry.State, 64)
	cl := testenv.MQTTClient(t, mosq.URL, "watcher")
	cl.Subscribe(telemetry.StateTopic("gw-fleet"), 1, func(_ mqtt.Client, m mqtt.Message) {
		if s, err := telemetry.DecodeState(m.Payload()); err == nil && s.Config != nil {
			select {
			case states <- s:
			default:
			}
		}
	}).Wait()
	push := func(gw string, version uint64, key ed25519.PrivateKey, config string) {
		t.Helper()
		env := telemetry.SignConfig(telemetry.ConfigEnvelope{Gateway: gw, Version: version, Issued: time.Now(), Config: config}, key)
		b, err := telemetry.EncodeConfig(env)
		if err != nil {
			t.Fatal(err)
		}
		if tok := cl.Publish(telemetry.ConfigTopic("gw-fleet"), 1, true, b); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	refused := func(reason string) uint64 {
		if f := status().Fleet; f != nil {
			return f.Refused[reason]
		}
		return 0
	}

	// (a) A good config: applied, kept, reported.
	push("gw-fleet", 1, trusted, yaml(1, "2s"))
	testenv.Eventually(t, "v1 applied and kept", wait, func() bool {
		s := status()
		return healthy("2s")() && s.Fleet != nil && s.Fleet.Version == 1 && s.Fleet.Checking == 0 && s.Fleet.Source == "remote"
	})
	testenv.Eventually(t, "state reports v1", wait, func() bool {
		s := <-states
		return s.Config.Version == 1 && s.Config.Source == "remote"
	})

	// (b) Refusals, each counted, none applied.
	for _, tc := range []struct {
		reason string
		push   func()
	}{
		{"unknown_key", func() { push("gw-fleet", 2, stranger, yaml(1, "3s")) }},
		{"other_gateway", func() { push("gw-other", 3, trusted, yaml(1, "3s")) }},
		{"old_version", func() { push("gw-fleet", 1, trusted, yaml(1, "3s")) }},
		{"invalid", func() {
			push("gw-fleet", 4, trusted, strings.Replace(yaml(1, "3s"), "interval: 3s", "intreval: 3s", 1))
		}},
	} {
		tc.push()
		testenv.Eventually(t, tc.reason+" counted", wait, func() bool { return refused(tc.reason) == 1 })
		if m := metric(t, base, `fieldwatch_gateway_fleet_configs_total{result="`+tc.reason+`"}`); m != "1" {
			t.Errorf("%s: metric %q, want 1", tc.reason, m)
		}
	}
	s := status()
	if s.Devices[0].Interval != "2s" || s.Fleet.Version != 1 {
		t.Fatalf("after refusals: interval %s, version %d; want 2s, 1", s.Devices[0].Interval, s.Fleet.Version)
	}
	if want := "remote config v4:11: buses[0].devices[0].intreval: unknown field"; !strings.Contains(s.Fleet.Error, want) {
		t.Errorf("invalid config's error %q does not contain %q", s.Fleet.Error, want)
	}
	// v4 was taken (and found invalid): a replay of it is not counted twice
	// as invalid, nor applied.
	if refused("invalid") != 1 {
		t.Errorf("invalid counted %d times", refused("invalid"))
	}

	// (c) A config that breaks polling (no unit 9 on the line): applied,
	// then rolled back to v1 when its grace period ends.
	push("gw-fleet", 5, trusted, yaml(9, "1500ms"))
	testenv.Eventually(t, "v5 applied", wait, func() bool {
		f := status().Fleet
		return f != nil && f.Checking == 5
	})
	testenv.Eventually(t, "v5 rolled back", 2*wait, func() bool {
		s := status()
		return s.Fleet != nil && s.Fleet.Rollback != nil && s.Fleet.Version == 1 && len(s.Devices) == 1 &&
			s.Devices[0].Interval == "2s" && s.Devices[0].Unit == 1
	})
	rb := status().Fleet.Rollback
	if rb.From != 5 || rb.To != 1 || !strings.Contains(rb.Reason, "no reading from soil-1") {
		t.Errorf("rollback %+v", rb)
	}
	testenv.Eventually(t, "state reports the rollback", wait, func() bool {
		s := <-states
		return s.Config.Version == 1 && s.Config.Rollback != nil && s.Config.Rollback.From == 5
	})
	testenv.Eventually(t, "v1 healthy again", wait, healthy("2s"))

	// A restart keeps v1 and does not take v5 (still retained) again.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() {
		done <- Run(ctx, Options{ConfigPath: path, Log: slog.New(slog.DiscardHandler), Reload: make(chan struct{}),
			Listening: func(a string) { addr <- a }})
	}()
	base = "http://" + <-addr
	testenv.Eventually(t, "restarted on v1", wait, func() bool {
		s := status()
		return healthy("2s")() && s.Fleet.Version == 1 && s.Fleet.Rollback != nil
	})
	if got := metric(t, base, `fieldwatch_gateway_fleet_configs_total{result="applied"}`); got != "" {
		t.Errorf("after the restart, applied = %q: the rolled back v5 was taken again", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
