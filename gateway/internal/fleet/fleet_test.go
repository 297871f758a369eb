package fleet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

var (
	trusted  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	stranger = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
)

const body = `gateway: {id: gw1}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
buffer: {dir: %s}
buses:
  - name: b
    type: tcp
    address: 127.0.0.1:502
    devices:
      - {id: soil-1, profile: renke/rs-ecth-n01, interval: %s}
`

// setup writes a local config that takes remote configs, and returns its
// path and a config text for version bodies.
func setup(t *testing.T) (local string, remote func(interval string) string) {
	dir := t.TempDir()
	buf := filepath.Join(dir, "buf")
	remote = func(interval string) string { return fmt.Sprintf(body, buf, interval) }
	local = filepath.Join(dir, "gateway.yaml")
	text := remote("1s") + fmt.Sprintf("fleet: {trusted_keys: [%q]}\n", telemetry.FormatPublicKey(trusted.Public().(ed25519.PublicKey)))
	if err := os.WriteFile(local, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return local, remote
}

func envelope(t *testing.T, gw string, v uint64, key ed25519.PrivateKey, config string) []byte {
	b, err := telemetry.EncodeConfig(telemetry.SignConfig(telemetry.ConfigEnvelope{Gateway: gw, Version: v,
		Issued: time.Now(), Config: config}, key))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRefusals: each envelope the manager must refuse is refused before
// anything runs, counted by its reason, and its error recorded.
func TestRefusals(t *testing.T) {
	path, remote := setup(t)
	m := New(path, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if _, err := m.Load(); err != nil {
		t.Fatal(err)
	}
	// As if version 5 had been taken.
	m.rec.Highest, m.rec.HighestSum = 5, telemetry.ConfigSum(remote("5s"))
	for _, tc := range []struct {
		name, reason string
		payload      []byte
		err          string
	}{
		{"garbage", Malformed, []byte("not json"), "config envelope"},
		{"truncated", Malformed, envelope(t, "gw1", 6, trusted, remote("2s"))[:100], "config envelope"},
		{"another gateway", OtherGateway, envelope(t, "gw2", 6, trusted, remote("2s")), `addressed to gateway "gw2"`},
		{"untrusted key", UnknownKey, envelope(t, "gw1", 6, stranger, remote("2s")), "does not trust"},
		{"bad signature", BadSignature, bytes.Replace(envelope(t, "gw1", 6, trusted, remote("2s")), []byte("2s"), []byte("3s"), 1), "does not match"},
		{"older version", OldVersion, envelope(t, "gw1", 4, trusted, remote("2s")), "not newer than 5"},
		{"same version, other config", OldVersion, envelope(t, "gw1", 5, trusted, remote("2s")), "not newer than 5"},
		{"invalid", Invalid, envelope(t, "gw1", 6, trusted, strings.Replace(remote("2s"), "interval", "intervl", 1)),
			"remote config v6:9: buses[0].devices[0].intervl: unknown field"},
		{"another buffer", Invalid, envelope(t, "gw1", 7, trusted, strings.Replace(remote("2s"), "buf}", "elsewhere}", 1)),
			"remote config v7:3: buffer.dir:"},
		{"its own trusted keys", Invalid, envelope(t, "gw1", 8, trusted, remote("2s")+"fleet: {trusted_keys: []}\n"),
			"remote config v8:10: fleet: is taken from the local file only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := m.Status().Refused[tc.reason]
			m.take(context.Background(), nil, tc.payload) // a nil host: nothing may run
			s := m.Status()
			if s.Refused[tc.reason] != before+1 {
				t.Fatalf("refused %v, want one more %s", s.Refused, tc.reason)
			}
			if !strings.HasPrefix(s.Error, tc.reason+": ") || !strings.Contains(s.Error, tc.err) {
				t.Fatalf("error %q, want %s: …%s…", s.Error, tc.reason, tc.err)
			}
			if s.Version != 0 || s.Checking != 0 {
				t.Fatalf("status %+v after a refusal", s)
			}
		})
	}
	// The retained envelope of the version taken, delivered again: quiet.
	m.rec.Highest, m.rec.HighestSum = 5, telemetry.ConfigSum(remote("5s"))
	before := m.Status().Refused
	m.take(context.Background(), nil, envelope(t, "gw1", 5, trusted, remote("5s")))
	if after := m.Status().Refused; fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a redelivered envelope was counted: %v → %v", before, after)
	}
}

// TestLocalEditWins: the remote config in force runs at start and on
// reload, until the local file is edited; then the local file runs, and
// versions already taken stay refused.
func TestLocalEditWins(t *testing.T) {
	path, remote := setup(t)
	m := New(path, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	local, err := m.Load()
	if err != nil {
		t.Fatal(err)
	}
	dir := local.Fleet.Dir
	if want := filepath.Join(filepath.Dir(path), "fleet"); dir != want {
		t.Fatalf("fleet.dir %s, want %s beside buffer.dir", dir, want)
	}
	data, _ := os.ReadFile(path)
	os.WriteFile(filepath.Join(dir, "remote-v2.yaml"), []byte(remote("2s")), 0o600)
	rec, _ := json.Marshal(record{Version: 2, Highest: 2, LocalSum: sum(data)})
	os.WriteFile(filepath.Join(dir, "state.json"), rec, 0o600)

	cfg, err := m.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Buses[0].Devices[0].Interval; got != 2*time.Second || m.Report().Version != 2 || m.Report().Source != "remote" {
		t.Fatalf("interval %v, report %+v; want the remote v2", got, m.Report())
	}
	if !cfg.RemoteEnabled() || cfg.Fleet.Keys[0] == nil {
		t.Fatal("the remote config lost the local fleet section")
	}

	os.WriteFile(path, append(data, []byte("# edited by hand\n")...), 0o600)
	cfg, err = m.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Buses[0].Devices[0].Interval; got != time.Second || m.Report().Version != 0 || m.Report().Source != "local" {
		t.Fatalf("interval %v, report %+v; want the local file", got, m.Report())
	}
	// Saved: a restart runs the local file too, and v2 is not taken again.
	m2 := New(path, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if cfg, _ = m2.Load(); cfg.Buses[0].Devices[0].Interval != time.Second || m2.rec.Highest != 2 {
		t.Fatalf("after a restart: interval %v, highest %d", cfg.Buses[0].Devices[0].Interval, m2.rec.Highest)
	}
	m2.take(context.Background(), nil, envelope(t, "gw1", 2, trusted, remote("3s")))
	if m2.Status().Refused[OldVersion] != 1 {
		t.Fatalf("v2 again after the local edit: %+v", m2.Status())
	}
}

// TestRestartsDuringCheck: a config under its health check survives
// MaxStarts starts of the gateway (a power cut); at the next it is rolled
// back without running, as a config that makes the gateway fail at start
// would otherwise never be.
func TestRestartsDuringCheck(t *testing.T) {
	path, remote := setup(t)
	local, err := New(path, slog.New(slog.DiscardHandler), prometheus.NewRegistry()).Load()
	if err != nil {
		t.Fatal(err)
	}
	dir := local.Fleet.Dir
	data, _ := os.ReadFile(path)
	os.WriteFile(filepath.Join(dir, "remote-v1.yaml"), []byte(remote("2s")), 0o600)
	os.WriteFile(filepath.Join(dir, "remote-v2.yaml"), []byte(remote("3s")), 0o600)
	rec, _ := json.Marshal(record{Version: 2, Highest: 2, LocalSum: sum(data),
		Pending: &pending{Version: 2, Prev: 1, Devices: []string{"soil-1"}}})
	os.WriteFile(filepath.Join(dir, "state.json"), rec, 0o600)
	for start := 1; start <= MaxStarts+1; start++ {
		m := New(path, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		cfg, err := m.Load()
		if err != nil {
			t.Fatal(err)
		}
		got, s := cfg.Buses[0].Devices[0].Interval, m.Status()
		if start <= MaxStarts {
			if got != 3*time.Second || s.Checking != 2 || s.Rollback != nil {
				t.Fatalf("start %d: interval %v, status %+v; want v2 under its check", start, got, s)
			}
			continue
		}
		if got != 2*time.Second || s.Version != 1 || s.Checking != 0 || s.Rollback == nil ||
			s.Rollback.From != 2 || !strings.Contains(s.Rollback.Reason, "started 3 times") {
			t.Fatalf("start %d: interval %v, status %+v; want v1 back after a rollback", start, got, s)
		}
	}
}
