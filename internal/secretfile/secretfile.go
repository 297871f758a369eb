// Package secretfile reads the files that hold secrets — passwords, API
// tokens, private keys — and says when other local users could read or
// change them, as Mosquitto 2.0 does for its password and key files: a
// file group or others may read or write, or that belongs to another user
// than the process (root excepted), is reported as Loose. Callers log it
// with Loose.Warn; the file is still used (docs/decisions.md says why).
package secretfile

import (
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
)

// MaxBytes bounds what Read accepts: a secret is small.
const MaxBytes = 8 << 20

// Loose is a secret file others can get at.
type Loose struct {
	// Field is the setting that names the file (such as
	// "mqtt.password_file"); the caller fills it in.
	Field string
	Path  string
	Mode  fs.FileMode
	// Who may get at it: "group", "others", "group and others", and/or
	// "its owner, uid N" for a file another user owns.
	Who string
}

func (l *Loose) String() string {
	s := fmt.Sprintf("%s (mode %04o) can be read or changed by %s", l.Path, l.Mode.Perm(), l.Who)
	if l.Field != "" {
		s = l.Field + ": " + s
	}
	return s
}

// Warn logs l at warn level with the path and mode, and how to fix it.
func (l *Loose) Warn(log *slog.Logger) {
	log.Warn("secret file can be read or changed by other users; chmod 600 it and chown it to the service's user",
		"field", l.Field, "path", l.Path, "mode", fmt.Sprintf("%04o", l.Mode.Perm()), "who", l.Who)
}

// Check reports whether the file at path is loose; nil when only its owner
// — this process's user, or root — may read and change it.
func Check(path string) (*Loose, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	return check(path, fi), nil
}

func check(path string, fi fs.FileInfo) *Loose {
	var who []string
	perm := fi.Mode().Perm()
	switch {
	case perm&0o070 != 0 && perm&0o007 != 0:
		who = append(who, "group and others")
	case perm&0o070 != 0:
		who = append(who, "group")
	case perm&0o007 != 0:
		who = append(who, "others")
	}
	if uid, ok := owner(fi); ok && uid != 0 && uid != os.Geteuid() {
		who = append(who, fmt.Sprintf("its owner, uid %d, not this process's user", uid))
	}
	if len(who) == 0 {
		return nil
	}
	return &Loose{Path: path, Mode: fi.Mode(), Who: strings.Join(who, "; ")}
}

// Read returns the content of the secret file at path (at most MaxBytes),
// and whether it is loose.
func Read(path string) ([]byte, *Loose, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > MaxBytes {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes", path, MaxBytes)
	}
	return data, check(path, fi), nil
}
