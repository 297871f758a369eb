package config

import (
	"strings"
	"testing"
)

const fleetBase = `gateway: {id: gw1}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
buffer: {dir: /var/lib/fieldwatch/buffer}
buses:
  - name: b
    type: tcp
    address: 127.0.0.1:502
    devices:
      - {id: soil-1, profile: renke/rs-ecth-n01}
`

const goodKey = "ed25519:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="

// TestFleetSection: the fleet section's defaults, and its errors with file,
// line and field.
func TestFleetSection(t *testing.T) {
	c, err := Load("g.yaml", []byte(fleetBase+"fleet: {trusted_keys: ["+goodKey+"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.RemoteEnabled() || !c.CommandsEnabled() || c.Fleet.Grace != DefaultGrace || c.Fleet.Dir != "/var/lib/fieldwatch/fleet" || len(c.Fleet.Keys) != 1 {
		t.Fatalf("fleet %+v", c.Fleet)
	}
	if c, err = Load("g.yaml", []byte(fleetBase+"fleet: {remote: false, trusted_keys: ["+goodKey+"]}\n")); err != nil || c.RemoteEnabled() {
		t.Fatalf("remote: false: %v, enabled %v", err, c.RemoteEnabled())
	}
	if c, err = Load("g.yaml", []byte(fleetBase+"fleet: {commands: false, trusted_keys: ["+goodKey+"]}\n")); err != nil ||
		c.CommandsEnabled() || !c.RemoteEnabled() {
		t.Fatalf("commands: false: %v, enabled %v", err, c.CommandsEnabled())
	}
	if c, err = Load("g.yaml", []byte(fleetBase)); err != nil || c.RemoteEnabled() || c.CommandsEnabled() {
		t.Fatalf("no fleet section: %v", err)
	}
	for _, tc := range []struct{ fleet, want string }{
		{"fleet: {trusted_keys: [\"rsa:AAAA\"]}", `g.yaml:10: fleet.trusted_keys[0]: "rsa:AAAA"… does not start with "ed25519:"`},
		{"fleet: {trusted_keys: [\"ed25519:AAAA\"]}", `g.yaml:10: fleet.trusted_keys[0]: "ed25519:AAAA"… is not 32 bytes`},
		{"fleet: {remote: true}", "g.yaml:10: fleet.remote: remote configuration needs at least one fleet.trusted_keys entry"},
		{"fleet: {commands: true}", "g.yaml:10: fleet.commands: remote commands need at least one fleet.trusted_keys entry"},
		{"fleet: {trusted_keys: [" + goodKey + "], grace: 2h}", "g.yaml:10: fleet.grace: 2h0m0s is not between 1s and 1h"},
		{"fleet: {trusted_keys: [" + goodKey + "], dir: /var/lib/fieldwatch/buffer}", "g.yaml:10: fleet.dir: must not be buffer.dir"},
		{"fleet: {trusted_keys: [" + goodKey + "], grase: 1m}", `g.yaml:10: fleet.grase: unknown field (did you mean "grace"?)`},
	} {
		_, err := Load("g.yaml", []byte(fleetBase+tc.fleet+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.fleet, err, tc.want)
		}
	}
}
