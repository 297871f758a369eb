package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// buildBinaries builds the main packages pkgs (paths from the module root)
// into a temporary directory and returns it.
func buildBinaries(b *testing.B, pkgs ...string) string {
	b.Helper()
	dir := b.TempDir()
	if err := testenv.Build("../..", dir, pkgs...); err != nil {
		b.Fatal(err)
	}
	return dir
}

// startBinary runs bin with args, its output in log, until the benchmark
// ends; the log's tail is printed if it fails.
func startBinary(b *testing.B, bin, log string, args ...string) *exec.Cmd {
	b.Helper()
	f, err := os.Create(log)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if b.Failed() {
			data, _ := os.ReadFile(log)
			b.Logf("--- %s ---\n%s", filepath.Base(log), data[max(0, len(data)-6000):])
		}
	})
	return cmd
}
