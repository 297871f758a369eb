package interop

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// bins holds the binaries TestMain builds.
var bins string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fieldwatch-interop-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins = dir
	if err := testenv.Build("../..", dir, "./cloud/cmd/fieldwatch-cloud", "./gateway/cmd/fieldwatch-gateway"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startCloud runs fieldwatch-cloud on embedded defaults with the config
// file config, on free loopback ports, and returns its HTTP address once it
// is healthy.
func startCloud(t *testing.T, config string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cloud.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	p := testenv.StartBinary(t, filepath.Join(bins, "fieldwatch-cloud"), "run", "-c", cfg, "-http", addr,
		"-mqtt-listen", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), "-data", filepath.Join(dir, "data"))
	testenv.Eventually(t, "the cloud healthy", wait, func() bool {
		if p.Exited() {
			t.Fatalf("the cloud exited:\n%s", p.Logs())
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	return addr
}
