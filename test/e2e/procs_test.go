package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
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
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	log := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bins, name), args...)
	cmd.Stdout, cmd.Stderr = f, f
	// The gateway marks its serial ports in use there: a directory per
	// test, not the machine's /run/fieldwatch.
	cmd.Env = append(os.Environ(), "FIELDWATCH_RUN_DIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t, syscall.SIGKILL)
		if t.Failed() {
			b, _ := os.ReadFile(log)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("--- %s log ---\n%s", name, b)
		}
	})
	return p
}

// stop sends sig and waits up to 20 s for the process to end.
func (p *proc) stop(t *testing.T, sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Errorf("%s did not stop on %v", p.name, sig)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
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

func (p *proc) exitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) logs() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}
