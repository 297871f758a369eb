package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/api"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/rollout"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// TestRolloutCreate runs `rollout create` against the API in-process: a
// gateway of the group without its file cancels the draft and says which
// file; with every file the configs and reverts are signed by the
// operator's key at N and N+1 and the rollout starts; pause and list
// follow; a missing flag is a usage error.
func TestRolloutCreate(t *testing.T) {
	reg := registry.New()
	for _, gw := range []string{"river-1", "river-2", "river-3"} {
		reg.ObserveState(gw, telemetry.State{State: telemetry.StateOnline, Time: time.Now(),
			Labels: map[string]string{"kind": "river"}, Config: &telemetry.ConfigState{Source: "local"}}, false)
	}
	var mu sync.Mutex
	sent := map[string][]byte{}
	eng, err := rollout.New(rollout.Options{Fleet: rollout.RegistryFleet{Registry: reg},
		Kinds: map[string]rollout.Kind{"config": rollout.ConfigKind{Registry: reg, Send: func(gw string, env []byte) error {
			mu.Lock()
			defer mu.Unlock()
			sent[gw] = env
			return nil
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	mux := http.NewServeMux()
	api.New(nil, reg, slog.New(slog.DiscardHandler), prometheus.NewRegistry()).WithRollouts(eng).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Setenv("FIELDWATCH_TOKEN", "")

	dir := t.TempDir()
	key := filepath.Join(dir, "fleet.key")
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), args, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, e := run("fleet", "keygen", "-key", key); code != ExitOK {
		t.Fatal(e)
	}
	priv, _ := readSigningKey(key, os.Stderr)
	for _, d := range []string{"new", "old"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
		for _, gw := range []string{"river-1", "river-2"} {
			os.WriteFile(filepath.Join(dir, d, gw+".yaml"), []byte("gateway: {id: "+gw+"}\n# "+d+"\n"), 0o644)
		}
	}
	create := []string{"rollout", "create", "-api", srv.URL, "-group", "kind=river", "-canary", "1", "-waves", "1",
		"-version", "6", "-config-dir", filepath.Join(dir, "new"), "-revert-dir", filepath.Join(dir, "old"), "-key", key}
	code, _, e := run(create...)
	if code != ExitFail || !strings.Contains(e, filepath.Join(dir, "new", "river-3.yaml")) || !strings.Contains(e, "cancelled") {
		t.Fatalf("without river-3's files: exit %d, %s", code, e)
	}
	if l := eng.List(); len(l) != 1 || l[0].State != rollout.Cancelled {
		t.Fatalf("the draft: %+v", l)
	}
	for _, d := range []string{"new", "old"} {
		os.WriteFile(filepath.Join(dir, d, "river-3.yaml"), []byte("gateway: {id: river-3}\n# "+d+"\n"), 0o644)
	}
	code, out, e := run(create...)
	if code != ExitOK || !strings.Contains(out, "config version 6 to 3 gateways (kind=river), canary 1 then waves of 2; reverts at version 7") {
		t.Fatalf("create: exit %d, %s%s", code, out, e)
	}
	id := strings.Fields(out)[1]
	eng.Tick()
	if len(sent) != 1 {
		t.Fatalf("sent to %d gateways; want the canary", len(sent))
	}
	for gw, b := range sent {
		env, err := telemetry.DecodeConfig(b)
		if err != nil || env.Gateway != gw || env.Version != 6 || !strings.HasSuffix(env.Config, "# new\n") ||
			env.Verify([]ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}) != nil {
			t.Errorf("sent to %s: %+v, %v", gw, env, err)
		}
	}
	if code, _, e := run("rollout", "pause", "-api", srv.URL, id); code != ExitOK {
		t.Fatal(e)
	}
	if code, out, e := run("rollout", "list", "-api", srv.URL); code != ExitOK || !strings.Contains(out, id) ||
		!strings.Contains(out, "paused") || !strings.Contains(out, "2 waiting, 1 sent") {
		t.Errorf("list: exit %d, %s%s", code, out, e)
	}
	if code, _, e := run("rollout", "resume", "-api", srv.URL, "nope"); code != ExitFail || !strings.Contains(e, "404") {
		t.Errorf("resume of an unknown rollout: exit %d, %s", code, e)
	}
	base := []string{"rollout", "create", "-api", srv.URL, "-group", "kind=river", "-version", "8", "-key", key}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"without -group", []string{"rollout", "create", "-api", srv.URL, "-version", "8"}, "-group, -version and -key are required"},
		{"a config without its directories", nil, "-config-dir and -revert-dir are required"},
		{"a release without its revert", []string{"-kind", "release", "-release", "2.0.0", "-artifact", "linux/arm64=x"},
			"-kind release needs -release, -artifact, -revert-release and -revert-artifact"},
		{"an unknown kind", []string{"-kind", "firmware"}, `-kind "firmware" is not config or release`},
		{"a bad release version", []string{"-kind", "release", "-release", "2.0 beta", "-artifact", "linux/arm64=x",
			"-revert-release", "1.0.0", "-revert-artifact", "linux/arm64=y"}, "-release / -revert-release"},
		{"a bad target", []string{"-kind", "release", "-release", "2.0.0", "-artifact", "Linux/ARM64=x",
			"-revert-release", "1.0.0", "-revert-artifact", "linux/arm64=y"}, "-artifact:"},
	} {
		args := c.args
		if !strings.HasPrefix(c.name, "without") {
			args = append(append([]string{}, base...), c.args...)
		}
		if code, _, e := run(args...); code != ExitUsage || !strings.Contains(e, c.want) {
			t.Errorf("create %s: exit %d, %s; want usage and %q", c.name, code, e, c.want)
		}
	}
	if n := len(eng.List()); n != 2 {
		t.Errorf("%d rollouts after the usage errors; want the 2 before", n)
	}
}
