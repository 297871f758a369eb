// Package apitoken holds the HTTP API's bearer tokens and what each may do.
// A token file lists names, roles and the SHA-256 of each secret; the
// secrets themselves are shown once, by `fieldwatch-cloud token`, and never
// stored. A secret is 32 random bytes, so a plain SHA-256 is as strong as a
// slow password hash would be, and checking one costs a hash and a map
// lookup.
//
//	tokens:
//	  - {name: alice, role: operator, sha256: 4f0c…}
//	  - {name: grafana, role: viewer, sha256: 9a1e…}
package apitoken

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// Role is what a caller may do; each role may do what the ones below it may.
type Role int

const (
	// None may do nothing (the anonymous role when every call needs a token).
	None Role = iota
	// Viewer reads: stations, series, events, alerts, silences, history.
	Viewer
	// Operator also acknowledges alerts and creates and expires silences.
	Operator
)

var roleNames = []string{"none", "viewer", "operator"}

func (r Role) String() string {
	if r >= 0 && int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole parses "none", "viewer" or "operator".
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if s == n {
			return Role(i), nil
		}
	}
	return None, fmt.Errorf("%q is not a role: none, viewer or operator", s)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *Role) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return yamlconf.TypeError(n, "expected a role: none, viewer or operator")
	}
	v, err := ParseRole(n.Value)
	if err != nil {
		return yamlconf.TypeError(n, err.Error())
	}
	*r = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (r Role) MarshalYAML() (any, error) { return r.String(), nil }

// Caller is who a token belongs to.
type Caller struct {
	Name string
	Role Role
}

// Entry is one token in a file.
type Entry struct {
	Name   string `yaml:"name"`
	Role   Role   `yaml:"role"`
	SHA256 string `yaml:"sha256"`
}

// File is a token file.
type File struct {
	Tokens []Entry `yaml:"tokens"`
}

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
	hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Validate implements yamlconf.Validator.
func (f *File) Validate(r *yamlconf.Report) {
	names, hashes := map[string]bool{}, map[string]bool{}
	for i, e := range f.Tokens {
		at := func(field string) string { return fmt.Sprintf("tokens[%d].%s", i, field) }
		switch {
		case !nameRE.MatchString(e.Name):
			r.Errorf(at("name"), "%q is not a name: 1 to 64 letters, digits and . _ @ -, starting with a letter or digit", e.Name)
		case names[e.Name]:
			r.Errorf(at("name"), "%q is given twice", e.Name)
		}
		names[e.Name] = true
		if e.Role == None {
			r.Errorf(at("role"), "is required: viewer or operator")
		}
		switch {
		case !hashRE.MatchString(e.SHA256):
			r.Errorf(at("sha256"), "is not 64 lowercase hex digits; `fieldwatch-cloud token` prints it")
		case hashes[e.SHA256]:
			r.Errorf(at("sha256"), "is the same token as an earlier entry")
		}
		hashes[e.SHA256] = true
	}
}

// Set is the tokens of a file, by hash.
type Set struct {
	byHash map[[sha256.Size]byte]Caller
	names  map[string]bool
}

// Parse reads a token file's content (named file in errors).
func Parse(file string, data []byte) (*Set, error) {
	var f File
	if err := yamlconf.Decode(file, data, &f); err != nil {
		return nil, err
	}
	s := &Set{byHash: make(map[[sha256.Size]byte]Caller, len(f.Tokens)), names: map[string]bool{}}
	for _, e := range f.Tokens {
		s.names[e.Name] = true
		var h [sha256.Size]byte
		hex.Decode(h[:], []byte(e.SHA256)) // checked by Validate
		s.byHash[h] = Caller{Name: e.Name, Role: e.Role}
	}
	return s, nil
}

// Load reads the token file at path.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Len is how many tokens s holds.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byHash)
}

// HasName reports whether a token of s is called name.
func (s *Set) HasName(name string) bool { return s != nil && s.names[name] }

// Lookup returns who secret belongs to.
func (s *Set) Lookup(secret string) (Caller, bool) {
	if s == nil || secret == "" {
		return Caller{}, false
	}
	c, ok := s.byHash[sha256.Sum256([]byte(secret))]
	return c, ok
}

// Prefix starts every secret, so it is recognisable in a leaked file.
const Prefix = "fwt_"

// New makes a secret and returns it with its hash for the token file.
func New() (secret, hash string) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24)
	secret = Prefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, Hash(secret)
}

// Hash is the hex SHA-256 of secret, as the token file holds it.
func Hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// FromHeader returns the secret of an "Authorization: Bearer <secret>"
// header value, and whether it has that form.
func FromHeader(v string) (string, bool) {
	scheme, secret, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	secret = strings.TrimSpace(secret)
	if secret == "" || strings.ContainsAny(secret, " \t") {
		return "", false
	}
	return secret, true
}
