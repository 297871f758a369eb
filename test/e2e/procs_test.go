package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// bins holds the binaries TestMain builds once for every test here.
var bins string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fieldwatch-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins = dir
	if err := testenv.Build("../..", dir, "./gateway/cmd/fieldwatch-gateway", "./cloud/cmd/fieldwatch-cloud"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one of our binaries running for a test.
type proc = testenv.Binary

// start runs one of the binaries TestMain built.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return testenv.StartBinary(t, filepath.Join(bins, name), args...)
}

// waitHealthy waits until the HTTP server at addr answers /healthz.
func waitHealthy(t *testing.T, addr string) {
	t.Helper()
	testenv.Eventually(t, addr+" healthy", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
}
