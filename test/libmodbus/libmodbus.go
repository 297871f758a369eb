package libmodbus

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Register contents the server starts with (see testdata/server.c).
const (
	Holding0 = 1000 // holding register i holds Holding0+i, for i < 100
	Input0   = 2000 // input register i holds Input0+i, for i < 50
)

// Build compiles server.c with gcc and libmodbus and returns the binary.
func Build(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "testdata", "server.c")
	bin := filepath.Join(t.TempDir(), "libmodbus-server")
	cflags := "-I/usr/include/modbus"
	if out, err := exec.Command("pkg-config", "--cflags", "libmodbus").Output(); err == nil {
		cflags = strings.TrimSpace(string(out))
	}
	args := append(strings.Fields(cflags), "-O1", "-o", bin, src, "-lmodbus")
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("cannot build the libmodbus server (run `make deps` for gcc and libmodbus-dev): %v\n%s", err, out)
	}
	return bin
}

// Server is a running server.
type Server struct {
	mu   sync.Mutex
	said map[string]int
}

// Said counts the lines after "ready" that the server printed as line.
func (s *Server) Said(line string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.said[line]
}

// Start runs the server with args until the test ends and waits for it to
// say it is ready.
func Start(t testing.TB, bin string, args ...string) *Server {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	srv := &Server{said: map[string]int{}}
	ready := make(chan error, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, err := r.ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
		for err == nil {
			if line, err = r.ReadString('\n'); err == nil {
				srv.mu.Lock()
				srv.said[strings.TrimSpace(line)]++
				srv.mu.Unlock()
			}
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("libmodbus server did not start: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("libmodbus server not ready after 10s\n%s", stderr.String())
	}
	return srv
}

// Exists reports whether path exists (the pty the server opens).
func Exists(path string) bool { _, err := os.Stat(path); return err == nil }
