package update

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

// rig is an updater of gateway gw1 on linux/amd64, running version 1.0,
// started through a link to a binary in its own directory.
type rig struct {
	u    *Updater
	dir  string
	link string
	old  string
}

func newRig(t *testing.T, linked bool) *rig {
	dir := t.TempDir()
	r := &rig{dir: dir, link: filepath.Join(dir, "bin", "fieldwatch-gateway"), old: filepath.Join(dir, "usr-bin-gateway")}
	if err := os.MkdirAll(filepath.Dir(r.link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.old, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if linked {
		if err := os.Symlink(r.old, r.link); err != nil {
			t.Fatal(err)
		}
	} else if err := os.WriteFile(r.link, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dl := &Downloader{Client: &http.Client{}, MaxFailures: 2, Backoff: time.Millisecond, MaxBackoff: time.Millisecond,
		Stall: 5 * time.Second, Log: slog.New(slog.DiscardHandler)}
	r.u = New(Options{Link: r.link, Target: "linux/amd64", Version: "1.0", Log: slog.New(slog.DiscardHandler), Downloader: dl},
		prometheus.NewRegistry())
	r.u.SetTrust(Trust{Gateway: "gw1", Keys: []ed25519.PublicKey{trusted.Public().(ed25519.PublicKey)},
		Dir: filepath.Join(dir, "fleet"), Grace: 10 * time.Second})
	return r
}

func manifest(t *testing.T, key ed25519.PrivateKey, version string, serial uint64, gws []string, arts ...telemetry.Artifact) []byte {
	if len(arts) == 0 {
		arts = []telemetry.Artifact{{Target: "linux/amd64", URL: "http://127.0.0.1:1/r", Size: 3, SHA256: strings.Repeat("ab", 32)}}
	}
	b, err := telemetry.EncodeRelease(telemetry.SignRelease(telemetry.Release{Version: version, Serial: serial, Issued: time.Now(),
		Gateways: gws, Artifacts: arts}, key))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRefusals: each manifest the updater must refuse is refused with its
// reason, counted and recorded as the last error; a manifest taken sets
// the serial, and the retained one delivered again is not counted.
func TestRefusals(t *testing.T) {
	r := newRig(t, true)
	gw := []string{"gw1"}
	tampered := manifest(t, trusted, "2.0", 9, gw)
	tampered = bytes.Replace(tampered, []byte(`"2.0"`), []byte(`"2.1"`), 1)
	// serial is the refused manifest's, which the error names (0: it
	// did not decode).
	f := func(payload []byte, reason string, serial uint64) {
		t.Helper()
		before := r.u.Status().Refused[reason]
		r.u.handle(payload)
		s := r.u.Status()
		if s.Refused[reason] != before+1 || !strings.HasPrefix(s.Error, reason) || s.ErrorSerial != serial {
			t.Fatalf("want a %s refusal of serial %d; status %+v", reason, serial, s)
		}
	}
	f([]byte(`{"format":1}`), Malformed, 0)
	f(manifest(t, trusted, "2.0", 9, []string{"gw2"}), OtherGateway, 9)
	f(manifest(t, stranger, "2.0", 8, gw), UnknownKey, 8)
	f(tampered, BadSignature, 9)
	f(manifest(t, trusted, "2.0", 7, gw, telemetry.Artifact{Target: "linux/arm64", URL: "http://h/a", Size: 1,
		SHA256: strings.Repeat("ab", 32)}), NoArtifact, 7)

	taken := manifest(t, trusted, "2.0", 5, []string{telemetry.AnyGateway})
	r.u.handle(taken)
	if s := r.u.Status(); s.Serial != 5 || s.Pending != "2.0" || s.Phase != Downloading || s.Error != "" || s.ErrorSerial != 0 {
		t.Fatalf("after taking serial 5: %+v", s)
	}
	r.u.handle(taken) // the retained manifest again, on a new connection
	if s := r.u.Status(); len(s.Refused) != 5 || s.Serial != 5 {
		t.Fatalf("the same manifest again changed something: %+v", s)
	}
	f(manifest(t, trusted, "1.5", 5, gw), OldSerial, 5)
	f(manifest(t, trusted, "1.5", 4, gw), OldSerial, 4)
	// Its own version again (an operator's rollback landing where it is):
	// taken, nothing to do.
	r.u.handle(manifest(t, trusted, "1.0", 6, gw))
	if s := r.u.Status(); s.Serial != 6 || s.Pending != "" {
		t.Fatalf("the running version again: %+v", s)
	}
	// The record survives a restart.
	u2 := newRigAt(t, r)
	if s := u2.Status(); s.Serial != 6 || !strings.HasPrefix(s.Error, OldSerial) || s.ErrorSerial != 4 {
		t.Fatalf("after a restart: %+v", s)
	}

	// A gateway not started through a link cannot switch binaries.
	nl := newRig(t, false)
	before := nl.u.Status().Refused[Unsupported]
	nl.u.handle(manifest(t, trusted, "2.0", 1, gw))
	if s := nl.u.Status(); s.Refused[Unsupported] != before+1 || !strings.Contains(s.Error, "not through a symbolic link") {
		t.Fatalf("no link: %+v", s)
	}
}

// newRigAt is another updater on r's files: the same gateway restarted.
func newRigAt(t *testing.T, r *rig) *Updater {
	u := New(Options{Link: r.link, Target: "linux/amd64", Version: "1.0", Log: slog.New(slog.DiscardHandler)}, prometheus.NewRegistry())
	u.SetTrust(*r.u.trust)
	return u
}

// host is the gateway as a test runs it: healthy, with one device, ready
// when ready says so.
type host struct {
	ready  bool
	swaps  chan *Trial
	health func() ([]telemetry.DeviceState, bool)
}

func (h *host) Health() ([]telemetry.DeviceState, bool) {
	if h.health != nil {
		return h.health()
	}
	return []telemetry.DeviceState{{ID: "soil-1", Health: "ok", LastRead: time.Now()}}, true
}

func (h *host) Ready(time.Time) (bool, string) { return h.ready, "outside updates.window" }
func (h *host) Swap(t *Trial)                  { h.swaps <- t }

// serve serves body as a release binary and returns its artifact.
func serve(t *testing.T, body string) telemetry.Artifact {
	ts := httptest.NewServer(&flakyServer{body: []byte(body)})
	t.Cleanup(ts.Close)
	sum := sha256.Sum256([]byte(body))
	return telemetry.Artifact{Target: "linux/amd64", URL: ts.URL + "/r", Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}
}

// TestTrial: a release is fetched, waits for the host to be ready, and is
// tried: a binary that exits at start is rolled back (the link untouched,
// the binary removed); one that reports itself healthy is kept (the link
// switched, the previous binary kept).
func TestTrial(t *testing.T) {
	for _, tc := range []struct {
		name, script, version string
		kept                  bool
		reason                string
	}{
		{"exits at start", "#!/bin/sh\necho broken >&2\nexit 1\n", "2.0-broken", false, "exited with status 1"},
		{"never healthy", "#!/bin/sh\nexec sleep 600\n", "2.0-silent", false, "did not become healthy within 1s"},
		{"healthy", "#!/bin/sh\necho ok > \"$" + TrialEnv + ".ok\"\nexec sleep 600\n", "2.0", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, true)
			r.u.trust.Grace = time.Second
			if tc.kept {
				r.u.trust.Grace = 30 * time.Second
			}
			h := &host{swaps: make(chan *Trial, 1)}
			r.u.handle(manifest(t, trusted, tc.version, 3, []string{"gw1"}, serve(t, tc.script)))
			ctx := context.Background()
			r.u.advance(ctx, h) // fetch
			if s := r.u.Status(); s.Phase != Waiting || s.Downloaded != s.Size {
				t.Fatalf("after the fetch: %+v", s)
			}
			r.u.advance(ctx, h) // not ready: waits
			if len(h.swaps) != 0 {
				t.Fatal("swapped outside the window")
			}
			h.ready = true
			r.u.advance(ctx, h)
			tr := <-h.swaps
			if tr.Version != tc.version || tr.From != "1.0" || len(tr.Devices) != 1 || r.u.Status().Phase != Trying {
				t.Fatalf("trial %+v, status %+v", tr, r.u.Status())
			}
			next, err := tr.Run(ctx, []string{"run", "-c", "x.yaml"})
			if err != nil || next != r.link {
				t.Fatalf("Run = %q, %v", next, err)
			}
			target, _ := os.Readlink(r.link)
			u2 := newRigAt(t, r)
			s := u2.Status()
			if tc.kept {
				if target != tr.Binary || s.Previous != "1.0" || s.Rollback != nil || s.Pending != "" || s.Serial != 3 || s.ErrorSerial != 0 {
					t.Fatalf("kept: link → %s, status %+v", target, s)
				}
				if _, err := os.Stat(r.old); err != nil {
					t.Fatalf("the previous binary is gone: %v", err)
				}
				return
			}
			if target != r.old || s.Rollback == nil || s.Rollback.From != tc.version || s.Rollback.To != "1.0" ||
				s.Rollback.Serial != 3 || s.ErrorSerial != 3 || !strings.Contains(s.Rollback.Reason, tc.reason) || s.Pending != "" {
				t.Fatalf("rolled back: link → %s, status %+v", target, s)
			}
			if _, err := os.Stat(tr.Binary); !os.IsNotExist(err) {
				t.Fatalf("the failed binary is still there: %v", err)
			}
		})
	}
}

// TestTrialInterrupted: the old binary started again while its record says
// a trial ran (a power cut) rolls the release back, and does not try it
// again.
func TestTrialInterrupted(t *testing.T) {
	r := newRig(t, true)
	h := &host{swaps: make(chan *Trial, 1), ready: true}
	r.u.handle(manifest(t, trusted, "2.0", 1, []string{"gw1"}, serve(t, "#!/bin/sh\nexit 0\n")))
	ctx := context.Background()
	r.u.advance(ctx, h)
	r.u.advance(ctx, h)
	<-h.swaps
	u2 := newRigAt(t, r)
	if s := u2.Status(); s.Pending != "" || s.Rollback == nil || s.Rollback.Serial != 1 || s.ErrorSerial != 1 ||
		!strings.Contains(s.Rollback.Reason, "stopped during the trial") {
		t.Fatalf("after the interrupted trial: %+v", s)
	}
}

// TestWatchTrial: the new binary reports itself healthy only once it is
// connected and every device of the trial file read since it started.
func TestWatchTrial(t *testing.T) {
	file := filepath.Join(t.TempDir(), "trial.json")
	if err := writeJSON(file, trialFile{Version: "2.0", Devices: []string{"soil-1", "gone"}}); err != nil {
		t.Fatal(err)
	}
	read := make(chan time.Time, 1)
	var last time.Time
	h := &host{health: func() ([]telemetry.DeviceState, bool) {
		select {
		case last = <-read:
		default:
		}
		return []telemetry.DeviceState{{ID: "soil-1", LastRead: last}}, true
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { watchTrial(ctx, file, h, slog.New(slog.DiscardHandler)); close(done) }()
	read <- time.Now().Add(-time.Hour) // a reading from before the start does not count
	read <- time.Now().Add(time.Second)
	<-done
	if _, err := os.Stat(file + ".ok"); err != nil {
		t.Fatalf("no .ok once healthy: %v", err)
	}
}
