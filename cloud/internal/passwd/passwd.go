// Package passwd reads Mosquitto password files — the ones mosquitto_passwd
// writes — and checks passwords against them, in pure Go, so one file
// serves the embedded broker and a Mosquitto broker alike.
//
// A line is "user:hash", the hash either
//
//	$7$<iterations>$<salt>$<hash>   PBKDF2-HMAC-SHA512 (mosquitto_passwd's default since 2.0)
//	$6$<salt>$<hash>                SHA-512 of the password then the salt (Mosquitto 1.6 and earlier)
//
// with the 12-byte salt and 64-byte hash in standard base64. Blank lines
// and lines starting with # are ignored. Where Mosquitto skips a line it
// cannot use and logs it, Parse refuses the whole file with the line's
// number: a gateway silently locked out is worse than a broker that says
// why it will not start.
package passwd

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Limits on what Parse accepts.
const (
	MaxFileBytes  = 8 << 20
	MaxUserBytes  = 65535 // as Mosquitto
	MaxIterations = 1_000_000
	saltBytes     = 12
	hashBytes     = 64
)

// Errors from Check.
var (
	ErrUnknownUser   = errors.New("unknown user")
	ErrWrongPassword = errors.New("wrong password")
)

// File is a parsed password file.
type File struct {
	users map[string]entry
}

type entry struct {
	kind       byte // '6' or '7'
	iterations int
	salt, hash []byte
	line       int
}

// Load reads and parses the password file at path; errors name it.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read password file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read password file: %w", err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxFileBytes)
	}
	pf, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	return pf, nil
}

// Parse parses a password file. An error starts with the line number
// ("3: …") so callers can prefix the file name.
func Parse(data []byte) (*File, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("0: larger than %d bytes", MaxFileBytes)
	}
	f := &File{users: map[string]entry{}}
	for i, raw := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		line := strings.Trim(string(raw), " \t\r")
		if line == "" || line[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%d: no ':' between user and password hash", n)
		}
		user, hash = strings.Trim(user, " \t"), strings.Trim(hash, " \t")
		switch {
		case user == "":
			return nil, fmt.Errorf("%d: empty user name", n)
		case len(user) > MaxUserBytes:
			return nil, fmt.Errorf("%d: user name longer than %d bytes", n, MaxUserBytes)
		}
		if prev, dup := f.users[user]; dup {
			return nil, fmt.Errorf("%d: user %q is already on line %d", n, user, prev.line)
		}
		e, err := parseHash(hash)
		if err != nil {
			return nil, fmt.Errorf("%d: user %q: %v", n, user, err)
		}
		e.line = n
		f.users[user] = e
	}
	return f, nil
}

func parseHash(s string) (entry, error) {
	if !strings.HasPrefix(s, "$") {
		return entry{}, errors.New("the password is not hashed (run mosquitto_passwd -U on the file)")
	}
	parts := strings.Split(s[1:], "$")
	var e entry
	switch {
	case parts[0] == "7" && len(parts) == 4:
		it, err := strconv.Atoi(parts[1])
		if err != nil || it < 1 || it > MaxIterations {
			return entry{}, fmt.Errorf("iterations %q is not 1..%d", parts[1], MaxIterations)
		}
		e = entry{kind: '7', iterations: it}
		parts = parts[2:]
	case parts[0] == "6" && len(parts) == 3:
		e = entry{kind: '6'}
		parts = parts[1:]
	case parts[0] == "6" || parts[0] == "7":
		return entry{}, fmt.Errorf("a $%s$ hash has %d fields separated by $, not %d", parts[0], map[string]int{"6": 3, "7": 4}[parts[0]], len(parts))
	default:
		return entry{}, errors.New("the hash is neither $7$ (PBKDF2-SHA512) nor $6$ (SHA-512)")
	}
	var err error
	if e.salt, err = base64.StdEncoding.DecodeString(parts[0]); err != nil || len(e.salt) != saltBytes {
		return entry{}, fmt.Errorf("the salt is not %d bytes of base64", saltBytes)
	}
	if e.hash, err = base64.StdEncoding.DecodeString(parts[1]); err != nil || len(e.hash) != hashBytes {
		return entry{}, fmt.Errorf("the hash is not %d bytes of base64", hashBytes)
	}
	return e, nil
}

// Len is the number of users.
func (f *File) Len() int { return len(f.users) }

// Has reports whether user is in the file.
func (f *File) Has(user string) bool {
	_, ok := f.users[user]
	return ok
}

// dummy is checked for unknown users so that a refusal takes as long
// whether or not the user exists.
var dummy = entry{kind: '7', iterations: 101, salt: make([]byte, saltBytes), hash: make([]byte, hashBytes)}

// Check returns nil when password is user's, ErrUnknownUser or
// ErrWrongPassword otherwise. Comparison is constant-time.
func (f *File) Check(user, password string) error {
	e, ok := f.users[user]
	if !ok {
		dummy.matches(password) // as long as for a known user
		return ErrUnknownUser
	}
	if !e.matches(password) {
		return ErrWrongPassword
	}
	return nil
}

func (e entry) matches(password string) bool {
	var sum []byte
	switch e.kind {
	case '7':
		k, err := pbkdf2.Key(sha512.New, password, e.salt, e.iterations, hashBytes)
		if err != nil {
			return false
		}
		sum = k
	case '6':
		h := sha512.New()
		h.Write([]byte(password))
		h.Write(e.salt)
		sum = h.Sum(nil)
	default:
		return false
	}
	return subtle.ConstantTimeCompare(sum, e.hash) == 1
}
