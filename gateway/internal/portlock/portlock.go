// Package portlock marks the serial ports a running gateway owns, so that
// the technician commands (read, probe, set) refuse them instead of sharing
// the line with the gateway and stealing each other's bytes.
//
// The exclusive-open flag the serial library sets (TIOCEXCL) keeps other
// users off an open port, but not root. So the gateway also takes an
// advisory lock, flock(2) LOCK_EX, on one file per port it owns, under a
// runtime directory (/run/fieldwatch/ports), and writes into the file who
// owns the port: its pid, the bus or stream device, the port as configured
// and the real device it names. A command checks the lock before it opens
// a port; the kernel releases it when the gateway exits, however it exits,
// so a crashed gateway leaves at most a stale file that blocks nothing.
//
// A port is known by the device it resolves to: /dev/serial/by-id/… and
// /dev/ttyUSB0 are one port. TCP endpoints (Modbus TCP, RTU over TCP) are
// not locked: a server takes many clients.
package portlock

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultDir is the runtime directory the gateway marks its ports in; the
// systemd unit creates it (RuntimeDirectory=fieldwatch).
const DefaultDir = "/run/fieldwatch"

// DirEnv names the environment variable that moves the runtime directory,
// for the gateway and the commands alike.
const DirEnv = "FIELDWATCH_RUN_DIR"

// Dir is the runtime directory: $FIELDWATCH_RUN_DIR, or DefaultDir.
func Dir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return DefaultDir
}

// Owner is who owns a port: the record in its lock file.
type Owner struct {
	PID    int       `json:"pid"`
	Kind   string    `json:"kind"`   // bus or stream
	Name   string    `json:"name"`   // the bus's name or the stream device's id
	Port   string    `json:"port"`   // as configured
	Device string    `json:"device"` // the real device Port named when it was locked
	Config string    `json:"config,omitempty"`
	Since  time.Time `json:"since"`
}

// InUseError says that a running gateway owns a port.
type InUseError struct {
	Port  string // as the command was given it
	Owner Owner  // zero when the record could not be read
}

func (e *InUseError) Error() string {
	o := e.Owner
	if o.PID == 0 {
		return fmt.Sprintf("%s is in use by a running gateway; stop it first (systemctl stop fieldwatch-gateway) "+
			"or read through it: fieldwatch-gateway status", e.Port)
	}
	on := ""
	if o.Port != e.Port {
		on = " on " + o.Port
	}
	return fmt.Sprintf("%s is in use by the running gateway (pid %d, %s %s%s); stop it first "+
		"(systemctl stop fieldwatch-gateway) or read through it: fieldwatch-gateway status", e.Port, o.PID, o.Kind, o.Name, on)
}

// Device is the real device path port names: absolute, symbolic links
// resolved. A port that is absent (an adapter unplugged) is taken as named.
func Device(port string) string {
	p, err := filepath.Abs(port)
	if err != nil {
		p = filepath.Clean(port)
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		return real
	}
	return p
}

// fileName is the lock file of a device: its path escaped as systemd does
// (/dev/ttyUSB0 is dev-ttyUSB0.lock), so distinct paths never share one.
func fileName(device string) string {
	var b strings.Builder
	for i, c := range []byte(strings.TrimPrefix(device, "/")) {
		switch {
		case c == '/':
			b.WriteByte('-')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String() + ".lock"
}

// Lock is the set of ports a gateway holds. The zero of *Lock, nil, holds
// nothing and does nothing: a gateway without a runtime directory.
type Lock struct {
	dir   string
	files map[string]*os.File // by device
}

// Open prepares dir to hold port locks; it takes none yet.
func Open(dir string) (*Lock, error) {
	pd := filepath.Join(dir, "ports")
	if err := os.MkdirAll(pd, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", pd, err)
	}
	return &Lock{dir: pd, files: map[string]*os.File{}}, nil
}

// Set makes l hold exactly the ports of owners, keeping the locks it
// already holds on those ports and releasing the others. It is all or
// nothing: when a port is held by another process it returns an
// *InUseError naming that owner, and l holds what it held before.
func (l *Lock) Set(owners []Owner) error {
	if l == nil {
		return nil
	}
	keep := map[string]*os.File{}
	var taken []*os.File
	undo := func() {
		for _, f := range taken {
			f.Close()
		}
	}
	for _, o := range owners {
		o.Device = Device(o.Port)
		o.PID = os.Getpid()
		o.Since = time.Now().UTC().Truncate(time.Second)
		if keep[o.Device] != nil {
			continue // one port named twice: config validation refuses that
		}
		f, held := l.files[o.Device]
		if !held {
			var err error
			if f, err = l.take(o); err != nil {
				undo()
				return err
			}
			taken = append(taken, f)
		}
		if err := writeRecord(f, o); err != nil {
			undo()
			return fmt.Errorf("cannot mark %s in use: %w", o.Port, err)
		}
		keep[o.Device] = f
	}
	for dev, f := range l.files {
		if keep[dev] == nil {
			f.Close() // the kernel drops the lock with the last descriptor
		}
	}
	l.files = keep
	return nil
}

// take locks the file of o's device.
func (l *Lock) take(o Owner) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(l.dir, fileName(o.Device)), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot mark %s in use: %w", o.Port, err)
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		other, _ := readRecord(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &InUseError{Port: o.Port, Owner: other}
		}
		return nil, fmt.Errorf("cannot lock %s: %w", o.Port, err)
	}
	return f, nil
}

// Release lets go of every port.
func (l *Lock) Release() {
	if l != nil {
		l.Set(nil)
	}
}

// Check returns an *InUseError when a running gateway owns port, and nil
// when none does: no runtime directory, no lock file for the port, or only
// stale ones left by a gateway that is gone.
func Check(dir, port string) error {
	o, owned := Owner{}, false
	want := identities(port)
	entries, err := os.ReadDir(filepath.Join(dir, "ports"))
	if err != nil {
		return nil // no gateway has marked a port here
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			continue
		}
		rec, held := holder(filepath.Join(dir, "ports", e.Name()))
		if !held {
			continue
		}
		if rec.PID == 0 { // locked a moment ago, the record not yet written
			for id := range want {
				if fileName(id) == e.Name() {
					o, owned = rec, true
				}
			}
			continue
		}
		ids := map[string]bool{rec.Device: true}
		if filepath.IsAbs(rec.Port) { // else relative to the gateway's directory
			ids = identities(rec.Port)
			ids[rec.Device] = true
		}
		for id := range ids {
			if want[id] {
				return &InUseError{Port: port, Owner: rec}
			}
		}
	}
	if owned {
		return &InUseError{Port: port, Owner: o}
	}
	return nil
}

// holder reports whether the lock file at path is held, and the record of
// who holds it.
func holder(path string) (Owner, bool) {
	f, err := os.Open(path)
	if err != nil {
		return Owner{}, false
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_SH|unix.LOCK_NB); err == nil {
		return Owner{}, false // nobody holds it: closing f unlocks
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		return Owner{}, false
	}
	o, _ := readRecord(f)
	return o, true
}

// identities are the names a port is known by: as given (absolute) and the
// real device.
func identities(port string) map[string]bool {
	ids := map[string]bool{Device(port): true}
	if p, err := filepath.Abs(port); err == nil {
		ids[p] = true
	}
	return ids
}

func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if ferr = unix.Flock(int(fd), how); !errors.Is(ferr, unix.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

func writeRecord(f *os.File, o Owner) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = f.WriteAt(append(b, '\n'), 0)
	return err
}

func readRecord(f *os.File) (Owner, error) {
	var o Owner
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<16))
	if err != nil {
		return o, err
	}
	err = json.Unmarshal(b, &o)
	return o, err
}
