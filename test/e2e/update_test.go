package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// updateStatus is the update part of the gateway's /status.
type updateStatus struct {
	Version string `json:"version"`
	Update  *struct {
		telemetry.UpdateState
		Version string            `json:"version"`
		Refused map[string]uint64 `json:"refused"`
	} `json:"update"`
}

// The releases the update tests build: the gateway under two version
// strings, and a binary that exits at start.
const v1, v2, broken = "1.0.0-e2e", "2.0.0-e2e", "3.0.0-broken"

// buildReleases builds v1, v2 and broken into dir and returns each one's
// binary.
func buildReleases(t *testing.T, dir string) map[string]string {
	t.Helper()
	bin := map[string]string{}
	for v, pkg := range map[string]string{v1: "./gateway/cmd/fieldwatch-gateway", v2: "./gateway/cmd/fieldwatch-gateway",
		broken: "./test/brokenrelease"} {
		if err := testenv.BuildVersion("../..", filepath.Join(dir, v), v, pkg); err != nil {
			t.Fatal(err)
		}
		bin[v] = filepath.Join(dir, v, filepath.Base(pkg))
	}
	return bin
}

// TestBinaryUpdateJourney runs the real binaries — the cloud on Mosquitto
// and InfluxDB, a gateway polling three simulated Modbus units — with the
// gateway started, as the shipped unit starts it, through a symbolic link
// to its binary, and updates it from the cloud with `fieldwatch-cloud
// fleet release`:
//
//   - a release built in the test (the same code, another version string)
//     is uploaded, fetched, tried and kept: the gateway process (the same
//     process id, which exec'ed the new binary) reports the new version to
//     its /status and to the cloud, and the previous one as kept;
//   - a release whose binary exits at start (test/brokenrelease) is rolled
//     back by the running gateway within the grace period, and the
//     rollback reaches the cloud;
//   - a manifest with a bad signature (changed after signing) and one
//     signed by a key the gateway does not trust are refused and counted;
//   - every item the gateway appended across both updates is in InfluxDB
//     exactly once.
func TestBinaryUpdateJourney(t *testing.T) {
	if runtime.GOARCH == "arm" {
		t.Skip("the test names its target linux/" + runtime.GOARCH)
	}
	target := runtime.GOOS + "/" + runtime.GOARCH
	r := newFaultRig(t)
	dir := t.TempDir()
	bin := buildReleases(t, dir)
	v2Bin, brokenBin := bin[v2], bin[broken]

	key, stranger := filepath.Join(dir, "fleet.key"), filepath.Join(dir, "stranger.key")
	out := []byte(cloudCmd(t, "fleet", "keygen", "-key", key))
	pub := strings.TrimSpace(string(out[strings.LastIndex(strings.TrimSpace(string(out)), "\n")+1:]))
	cloudCmd(t, "fleet", "keygen", "-key", stranger)

	// The layout of the shipped unit: a link the gateway's user may
	// switch, to the packaged binary at first.
	const id = "gw-update"
	link := filepath.Join(dir, "var", "bin", "fieldwatch-gateway")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin[v1], link); err != nil {
		t.Fatal(err)
	}
	const grace = 30 * time.Second
	g := &faultGateway{t: t, id: id, cfg: filepath.Join(dir, "gateway.yaml"),
		http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	conf := fmt.Sprintf(faultGatewayConfig, id, r.mosq.URL, smallBatches, filepath.Join(dir, "var", "buffer"), "", g.http,
		r.simAddr) + fmt.Sprintf("fleet: {trusted_keys: [%q], grace: %v}\n", pub, grace)
	if err := os.WriteFile(g.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r.sensors(true)
	g.p = testenv.StartBinary(t, link, "run", "-c", g.cfg)
	g.waitAcked(30)
	pid := g.p.Cmd.Process.Pid
	status := func() (s updateStatus) {
		testenv.GetJSON("http://"+g.http+"/status", &s)
		return s
	}
	var st struct {
		Version string                 `json:"version"`
		Update  *telemetry.UpdateState `json:"update"`
	}
	cloudStation := func() {
		st.Version, st.Update = "", nil
		testenv.GetJSON("http://"+r.cloudHTTP+"/api/v1/stations/"+id, &st)
	}
	testenv.Eventually(t, "v1 runs and reports updates", 60*time.Second, func() bool {
		s := status()
		return s.Version == v1 && s.Update != nil
	})
	release := func(version string, serial int, keyFile, bin string) {
		cloudCmd(t, "fleet", "release", "-api", "http://"+r.cloudHTTP, "-gateway", id, "-key", keyFile, "-version", version,
			"-serial", fmt.Sprint(serial), "-artifact", target+"="+bin)
	}

	// (a) The new version, fetched from the cloud, tried and kept.
	release(v2, 1, key, v2Bin)
	testenv.Eventually(t, "v2 runs", 120*time.Second, func() bool {
		s := status()
		return s.Version == v2 && s.Update != nil && s.Update.Previous == v1 && s.Update.Pending == ""
	})
	if g.p.Exited() || g.p.Cmd.Process.Pid != pid {
		t.Fatal("the gateway process ended; it should have exec'ed the new binary")
	}
	if target, _ := os.Readlink(link); !strings.HasPrefix(filepath.Base(target), "fieldwatch-gateway-"+v2+"-") {
		t.Fatalf("the link points at %s", target)
	}
	testenv.Eventually(t, "the cloud knows v2 runs", 60*time.Second, func() bool {
		cloudStation()
		return st.Version == v2 && st.Update != nil && st.Update.Serial == 1
	})

	// (b) Refused and counted: a manifest changed after it was signed, and
	// one signed by a key the gateway does not trust.
	rel := telemetry.SignRelease(telemetry.Release{Version: "9.9.9", Serial: 5, Issued: time.Now(), Gateways: []string{id},
		Artifacts: []telemetry.Artifact{{Target: target, URL: "http://" + r.cloudHTTP + "/releases/" + strings.Repeat("ab", 32),
			Size: 1, SHA256: strings.Repeat("ab", 32)}}}, readKey(t, key))
	rel.Version = "9.9.10" // not what was signed
	forged, err := telemetry.EncodeRelease(rel)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+r.cloudHTTP+"/api/v1/stations/"+id+"/release", bytes.NewReader(forged))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT the forged manifest: %v %v", err, resp)
	}
	resp.Body.Close()
	metrics := "http://" + g.http + "/metrics"
	testenv.Eventually(t, "bad signature refused and counted", 60*time.Second, func() bool {
		s := status()
		return s.Update != nil && s.Update.Refused["bad_signature"] == 1 &&
			metric(t, metrics, `fieldwatch_gateway_updates_total{result="bad_signature"}`) == 1
	})
	release("9.9.11", 6, stranger, v2Bin)
	testenv.Eventually(t, "untrusted key refused and counted", 60*time.Second, func() bool {
		return metric(t, metrics, `fieldwatch_gateway_updates_total{result="unknown_key"}`) == 1
	})
	testenv.Eventually(t, "the cloud hears of the refusal", 60*time.Second, func() bool {
		cloudStation()
		return st.Update != nil && strings.HasPrefix(st.Update.Error, "unknown_key")
	})

	// (c) A release that exits at start: the running v2 tries it and
	// rolls it back within the grace period, by itself.
	published := time.Now()
	release(broken, 2, key, brokenBin)
	testenv.Eventually(t, "the broken release rolled back", grace+60*time.Second, func() bool {
		s := status()
		return s.Update != nil && s.Update.Rollback != nil && s.Update.Rollback.From == broken && s.Version == v2
	})
	s := status()
	rb := s.Update.Rollback
	if rb.To != v2 || !strings.Contains(rb.Reason, "exited with status 1") {
		t.Errorf("rollback %+v", rb)
	}
	if took := rb.At.Sub(published); took > grace {
		t.Errorf("rolled back %v after the release was published; the grace period is %v", took, grace)
	}
	if g.p.Exited() {
		t.Fatal("the gateway process ended")
	}
	if target, _ := os.Readlink(link); !strings.HasPrefix(filepath.Base(target), "fieldwatch-gateway-"+v2+"-") {
		t.Fatalf("after the rollback the link points at %s", target)
	}
	out, err = exec.Command(filepath.Join(bins, "fieldwatch-gateway"), "status", "-addr", g.http).CombinedOutput()
	if want := "release  " + v2 + " (previous " + v1 + " kept) — ROLLED BACK " + broken + " to " + v2; err != nil ||
		!strings.Contains(string(out), want) {
		t.Errorf("fieldwatch-gateway status: %v, want %q in\n%s", err, want, out)
	}
	testenv.Eventually(t, "the cloud knows of the rollback", 60*time.Second, func() bool {
		cloudStation()
		return st.Version == v2 && st.Update != nil && st.Update.Rollback != nil && st.Update.Rollback.From == broken
	})

	// (d) Nothing lost, nothing stored twice across both hand-overs.
	if gs, ok := g.status(); ok {
		g.waitAcked(gs.Buffer.NextSeq + 30)
	}
	r.accountAll(g)
}
