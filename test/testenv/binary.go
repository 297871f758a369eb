package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Binary is one of the project's binaries (fieldwatch-cloud,
// fieldwatch-gateway) running for a test: killed when the test ends, its
// log printed if the test failed.
type Binary struct {
	Name string
	Cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// StartBinary runs bin with args, its output in a log file. The gateway
// marks its serial ports in use under FIELDWATCH_RUN_DIR: a directory per
// test, not the machine's /run/fieldwatch.
func StartBinary(t testing.TB, bin string, args ...string) *Binary {
	t.Helper()
	name := filepath.Base(bin)
	log := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "FIELDWATCH_RUN_DIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	b := &Binary{Name: name, Cmd: cmd, log: log, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(b.done) }()
	t.Cleanup(func() {
		b.Stop(t, syscall.SIGKILL) // SIGKILL: a stopped (SIGSTOP) process ends too
		if t.Failed() {
			data, _ := os.ReadFile(log)
			t.Logf("--- %s log ---\n%s", name, data[max(0, len(data)-6000):])
		}
	})
	return b
}

// Stop sends sig and waits up to 20 s for the process to end.
func (b *Binary) Stop(t testing.TB, sig syscall.Signal) {
	if b.Exited() {
		return
	}
	_ = b.Cmd.Process.Signal(sig)
	select {
	case <-b.done:
	case <-time.After(20 * time.Second):
		t.Errorf("%s did not stop on %v", b.Name, sig)
		_ = b.Cmd.Process.Kill()
		<-b.done
	}
}

// Exited reports whether the process has ended.
func (b *Binary) Exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// ExitCode waits for the process to end and returns its exit code.
func (b *Binary) ExitCode() int {
	<-b.done
	return b.Cmd.ProcessState.ExitCode()
}

// Logs is what the process printed so far.
func (b *Binary) Logs() string {
	data, _ := os.ReadFile(b.log)
	return string(data)
}
