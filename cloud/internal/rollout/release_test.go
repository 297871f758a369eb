package rollout

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

func TestObserveRelease(t *testing.T) {
	const ver, serial = "1.6.0", 12
	for _, c := range []struct {
		name    string
		state   telemetry.UpdateState
		running string
		want    Outcome
		why     string
	}{
		{"not received", telemetry.UpdateState{Serial: 11}, "1.5.0", Pending, ""},
		{"not received, an older error", telemetry.UpdateState{Serial: 11, Error: "download_failed: release 1.5.0 (serial 11): …"}, "1.4.0", Pending, ""},
		{"refused: key", telemetry.UpdateState{Serial: 11, Error: "unknown_key: release 1.6.0 (serial 12): no trusted key (key ed25519:…)"}, "1.5.0", Bad, "refused: unknown_key"},
		{"refused: no binary", telemetry.UpdateState{Serial: 11, Error: "no_artifact: release 1.6.0 (serial 12) has no binary for linux/mipsle"}, "1.5.0", Bad, "refused: no_artifact"},
		{"serial 1 is not serial 12", telemetry.UpdateState{Serial: 0, Error: "unknown_key: release 1.6.0 (serial 1): …"}, "1.5.0", Pending, ""},
		{"downloading", telemetry.UpdateState{Serial: 12, Pending: ver, Phase: "downloading", Size: 100, Downloaded: 40}, "1.5.0", Pending, ""},
		{"waiting for its window", telemetry.UpdateState{Serial: 12, Pending: ver, Phase: "waiting"}, "1.5.0", Pending, ""},
		{"on trial, reported by the new binary", telemetry.UpdateState{Serial: 12, Pending: ver, Phase: "trying"}, ver, Pending, ""},
		{"running", telemetry.UpdateState{Serial: 12, Previous: "1.5.0"}, ver, Healthy, ""},
		{"already running that version", telemetry.UpdateState{Serial: 12}, ver, Healthy, ""},
		{"rolled back", telemetry.UpdateState{Serial: 12, Error: "the new binary exited", Rollback: &telemetry.UpdateRollback{
			From: ver, To: "1.5.0", Reason: "the new binary exited at start (status 3)"}}, "1.5.0", Bad, "rolled back: the new binary exited"},
		{"download failed", telemetry.UpdateState{Serial: 12, Error: "hash_mismatch: release 1.6.0: …"}, "1.5.0", Bad, "failed: hash_mismatch"},
		{"superseded while pending", telemetry.UpdateState{Serial: 13, Pending: "1.7.0", Phase: "downloading"}, "1.5.0", Bad, "superseded"},
		{"superseded", telemetry.UpdateState{Serial: 13}, "1.7.0", Bad, "superseded"},
		// Gateways that report the serial an error or rollback is about.
		{"refused, by its serial", telemetry.UpdateState{Serial: 11, Error: "bad_signature: …", ErrorSerial: 12}, "1.5.0", Bad, "refused: bad_signature"},
		{"another manifest refused", telemetry.UpdateState{Serial: 11, Error: "unknown_key: …", ErrorSerial: 10}, "1.5.0", Pending, ""},
		{"rolled back, by its serial", telemetry.UpdateState{Serial: 12, Error: "exited", ErrorSerial: 12, Rollback: &telemetry.UpdateRollback{
			From: ver, To: "1.5.0", Serial: 12, Reason: "the new binary exited at start"}}, "1.5.0", Bad, "rolled back: the new binary"},
		{"the same version rolled back under an older serial", telemetry.UpdateState{Serial: 12, Pending: ver, Phase: "downloading",
			Rollback: &telemetry.UpdateRollback{From: ver, To: "1.5.0", Serial: 9, Reason: "x"}}, "1.5.0", Pending, ""},
		{"an older serial's error while running it", telemetry.UpdateState{Serial: 12, Error: "x", ErrorSerial: 9}, ver, Healthy, ""},
	} {
		o, why, newest := observeRelease(&c.state, c.running, ver, serial)
		want := max(c.state.Serial, c.state.ErrorSerial)
		if rb := c.state.Rollback; rb != nil {
			want = max(want, rb.Serial)
		}
		if o != c.want || newest != want || !strings.HasPrefix(why, c.why) || (o == Bad) != (why != "") {
			t.Errorf("%s: got %v %q newest %d; want %v %q… newest %d", c.name, o, why, newest, c.want, c.why, want)
		}
	}
}

func TestReleaseKindCheck(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(gws ...string) []byte {
		b, err := telemetry.EncodeRelease(telemetry.SignRelease(telemetry.Release{Version: "1.6.0", Serial: 12,
			Issued: time.Now(), Gateways: gws, Artifacts: []telemetry.Artifact{{Target: "linux/arm64",
				URL: "https://cloud.example/releases/" + strings.Repeat("ab", 32), Size: 1 << 20, SHA256: strings.Repeat("ab", 32)}}}, priv))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	k := ReleaseKind{}
	for _, c := range []struct {
		name    string
		item    []byte
		want    uint64
		wantErr string
	}{
		{"addressed to it", manifest("river-01", "river-02"), 12, ""},
		{"for every gateway", manifest(telemetry.AnyGateway), 12, ""},
		{"for others", manifest("river-02"), 0, `the release is for river-02, not "river-01"`},
		{"not a manifest", []byte(`{"gateway":"river-01","version":3}`), 0, "release manifest"},
	} {
		v, err := k.Check("river-01", c.item)
		if v != c.want || (c.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: Check = %d, %v; want %d, %q", c.name, v, err, c.want, c.wantErr)
		}
	}
}
