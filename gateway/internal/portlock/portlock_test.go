package portlock

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
)

// The test binary doubles as a gateway in another process: with
// helperDir set it locks helperPort, says so, and waits to be killed.
const (
	helperDir  = "PORTLOCK_TEST_OWNER_DIR"
	helperPort = "PORTLOCK_TEST_OWNER_PORT"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperDir); dir != "" {
		l, err := Open(dir)
		if err == nil {
			err = l.Set([]Owner{{Kind: "bus", Name: "rs485", Port: os.Getenv(helperPort)}})
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin) // until the test kills us
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// port makes a pseudo-terminal, the stand-in for /dev/ttyUSB0, and a
// symbolic link to it, the stand-in for /dev/serial/by-id/….
func port(t *testing.T) (dev, link string) {
	t.Helper()
	p, err := serialport.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	link = filepath.Join(t.TempDir(), "usb-FTDI_FT232R_A10K-if00-port0")
	if err := os.Symlink(p.Slave, link); err != nil {
		t.Fatal(err)
	}
	return p.Slave, link
}

func inUse(t *testing.T, err error) *InUseError {
	t.Helper()
	var e *InUseError
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want an *InUseError", err)
	}
	return e
}

func TestCheck(t *testing.T) {
	dev, link := port(t)
	other, _ := port(t)
	dir := t.TempDir()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Set([]Owner{{Kind: "bus", Name: "rs485", Port: link, Config: "/etc/fieldwatch/gateway.yaml"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, port string
		want            string // "" when free
	}{
		{"the device behind the configured link", dir, dev,
			fmt.Sprintf("%s is in use by the running gateway (pid %d, bus rs485 on %s); stop it first (systemctl stop fieldwatch-gateway) or read through it: fieldwatch-gateway status", dev, os.Getpid(), link)},
		{"the link as configured", dir, link, fmt.Sprintf("(pid %d, bus rs485);", os.Getpid())},
		{"another port", dir, other, ""},
		{"a port that is absent", dir, "/dev/ttyUSB9", ""},
		{"no runtime directory", filepath.Join(dir, "absent"), dev, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.dir, tc.port)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			e := inUse(t, err)
			if !strings.Contains(e.Error(), tc.want) {
				t.Fatalf("unexpected message %q; want it to hold %q", e, tc.want)
			}
			if e.Owner.Device != dev || e.Owner.Config != "/etc/fieldwatch/gateway.yaml" {
				t.Fatalf("unexpected owner %+v", e.Owner)
			}
		})
	}
	l.Release()
	if err := Check(dir, dev); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// TestSetIsAllOrNothing: a second gateway cannot take a port the first
// holds, keeps what it held, and a reload that keeps a port never lets go
// of it.
func TestSetIsAllOrNothing(t *testing.T) {
	a, _ := port(t)
	b, _ := port(t)
	c, _ := port(t)
	dir := t.TempDir()
	first, _ := Open(dir)
	second, _ := Open(dir)
	if err := first.Set([]Owner{{Kind: "bus", Name: "a", Port: a}, {Kind: "stream", Name: "buoy", Port: b}}); err != nil {
		t.Fatal(err)
	}
	if err := second.Set([]Owner{{Kind: "bus", Name: "x", Port: c}}); err != nil {
		t.Fatal(err)
	}
	e := inUse(t, second.Set([]Owner{{Kind: "bus", Name: "x", Port: c}, {Kind: "bus", Name: "y", Port: b}}))
	if e.Owner.Kind != "stream" || e.Owner.Name != "buoy" || e.Port != b {
		t.Fatalf("unexpected %+v", e)
	}
	if inUse(t, Check(dir, c)).Owner.Name != "x" {
		t.Fatal("the refused Set let go of what it held")
	}
	// A reload: a is dropped, b kept (its record rewritten), c is second's.
	if err := first.Set([]Owner{{Kind: "bus", Name: "renamed", Port: b}}); err != nil {
		t.Fatal(err)
	}
	if err := Check(dir, a); err != nil {
		t.Fatalf("a dropped port: %v", err)
	}
	if got := inUse(t, Check(dir, b)).Owner.Name; got != "renamed" {
		t.Fatalf("kept port owned by %q", got)
	}
	if err := second.Set([]Owner{{Kind: "bus", Name: "z", Port: a}}); err != nil {
		t.Fatalf("taking a freed port: %v", err)
	}
	var none *Lock // a gateway without a runtime directory
	if err := none.Set([]Owner{{Port: b}}); err != nil {
		t.Fatal(err)
	}
	none.Release()
}

// TestCrashedOwnerDoesNotBlock: a gateway in another process holds the
// port; killed, it leaves its lock file behind, and the port is free.
func TestCrashedOwnerDoesNotBlock(t *testing.T) {
	dev, link := port(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperDir+"="+dir, helperPort+"="+link)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("owner process: %q %v", line, err)
	}
	e := inUse(t, Check(dir, dev))
	if e.Owner.PID != cmd.Process.Pid {
		t.Fatalf("owner pid %d, want %d", e.Owner.PID, cmd.Process.Pid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() // the kernel closed its files, and so dropped its lock
	if err := Check(dir, dev); err != nil {
		t.Fatalf("a dead owner blocks: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "ports", "*.lock"))
	if len(files) != 1 {
		t.Fatalf("lock files %v, want the stale one", files)
	}
	l, _ := Open(dir)
	if err := l.Set([]Owner{{Kind: "bus", Name: "rs485", Port: dev}}); err != nil {
		t.Fatalf("a restarted gateway cannot take the port: %v", err)
	}
	l.Release()
}

func TestFileName(t *testing.T) {
	for dev, want := range map[string]string{
		"/dev/ttyUSB0":                       "dev-ttyUSB0.lock",
		"/dev/pts/3":                         "dev-pts-3.lock",
		"/dev/serial/by-id/usb-FTDI_A1-if00": `dev-serial-by\x2did-usb\x2dFTDI_A1\x2dif00.lock`,
		"/dev/tty-USB0":                      `dev-tty\x2dUSB0.lock`,
		"/dev/tty/USB0":                      "dev-tty-USB0.lock",
		"/tmp/.hidden/x":                     "tmp-.hidden-x.lock",
		"/.x":                                `\x2ex.lock`,
	} {
		if got := fileName(dev); got != want {
			t.Errorf("fileName(%q) = %q; want %q", dev, got, want)
		}
	}
}
