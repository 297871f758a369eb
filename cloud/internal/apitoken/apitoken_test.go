package apitoken

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAndLookup(t *testing.T) {
	alice, aliceHash := New()
	graf, grafHash := New()
	data := "tokens:\n  - {name: alice, role: operator, sha256: " + aliceHash + "}\n" +
		"  - name: grafana\n    role: viewer\n    sha256: " + grafHash + "\n"
	s, err := Parse("tokens.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 || !s.HasName("alice") || !s.HasName("grafana") || s.HasName("bob") {
		t.Fatalf("Len %d, names %v", s.Len(), s.names)
	}
	for _, tc := range []struct {
		secret string
		want   Caller
		ok     bool
	}{
		{alice, Caller{"alice", Operator}, true},
		{graf, Caller{"grafana", Viewer}, true},
		{alice + "x", Caller{}, false},
		{aliceHash, Caller{}, false}, // the hash is not the secret
		{"", Caller{}, false},
	} {
		got, ok := s.Lookup(tc.secret)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Lookup(%q) = %+v %v; want %+v %v", tc.secret, got, ok, tc.want, tc.ok)
		}
	}
	var none *Set
	if _, ok := none.Lookup(alice); ok || none.Len() != 0 {
		t.Error("a nil set knows a token")
	}
}

func TestParseErrors(t *testing.T) {
	h := Hash("fwt_x")
	for _, tc := range []struct {
		name, data, want string
	}{
		{"bad role", "tokens:\n  - {name: a, role: admin, sha256: " + h + "}\n", `tokens.yaml:2: tokens[0].role: "admin" is not a role`},
		{"no role", "tokens:\n  - {name: a, sha256: " + h + "}\n", "tokens.yaml:2: tokens[0].role: is required"},
		{"bad hash", "tokens:\n  - {name: a, role: viewer, sha256: 12ab}\n", "tokens.yaml:2: tokens[0].sha256: is not 64 lowercase hex"},
		{"upper hash", "tokens:\n  - {name: a, role: viewer, sha256: " + strings.ToUpper(h) + "}\n", "tokens[0].sha256: is not 64"},
		{"secret instead of hash", "tokens:\n  - {name: a, role: viewer, sha256: fwt_abc}\n", "tokens[0].sha256"},
		{"bad name", "tokens:\n  - {name: 'a b', role: viewer, sha256: " + h + "}\n", `tokens[0].name: "a b" is not a name`},
		{"same name", "tokens:\n  - {name: a, role: viewer, sha256: " + h + "}\n  - {name: a, role: viewer, sha256: " + Hash("y") + "}\n",
			`tokens.yaml:3: tokens[1].name: "a" is given twice`},
		{"same token", "tokens:\n  - {name: a, role: viewer, sha256: " + h + "}\n  - {name: b, role: operator, sha256: " + h + "}\n",
			"tokens.yaml:3: tokens[1].sha256: is the same token"},
		{"unknown field", "tokens:\n  - {name: a, role: viewer, secret: x}\n", "tokens.yaml:2: tokens[0].secret: unknown field"},
		{"empty", "", "file is empty"},
		{"not yaml", "tokens: [\n", "tokens.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("tokens.yaml", []byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !os.IsNotExist(err) {
		t.Fatalf("missing file: %v", err)
	}
	secret, hash := New()
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	os.WriteFile(path, []byte("tokens:\n  - {name: ops, role: operator, sha256: "+hash+"}\n"), 0o600)
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := s.Lookup(secret); !ok || c.Name != "ops" {
		t.Fatalf("Lookup: %+v %v", c, ok)
	}
}

func TestNewSecretsDiffer(t *testing.T) {
	a, ah := New()
	b, bh := New()
	if a == b || ah == bh || !strings.HasPrefix(a, Prefix) || len(a) != len(Prefix)+43 || Hash(a) != ah {
		t.Fatalf("New gave %q %q (%s %s)", a, b, ah, bh)
	}
}

func TestFromHeader(t *testing.T) {
	for _, tc := range []struct {
		header, secret string
		ok             bool
	}{
		{"Bearer fwt_abc", "fwt_abc", true},
		{"bearer fwt_abc", "fwt_abc", true},
		{"Bearer  fwt_abc ", "fwt_abc", true},
		{"Basic dXNlcjpwdw==", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer a b", "", false},
		{"fwt_abc", "", false},
		{"", "", false},
	} {
		s, ok := FromHeader(tc.header)
		if s != tc.secret || ok != tc.ok {
			t.Errorf("FromHeader(%q) = %q %v; want %q %v", tc.header, s, ok, tc.secret, tc.ok)
		}
	}
}

func TestRoles(t *testing.T) {
	for _, r := range []Role{None, Viewer, Operator} {
		got, err := ParseRole(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %v %v", r.String(), got, err)
		}
	}
	if _, err := ParseRole("admin"); err == nil {
		t.Error("admin parsed")
	}
	if !(None < Viewer && Viewer < Operator) {
		t.Error("roles are not ordered")
	}
}

// FuzzParse: any file is parsed or refused with an error; a parsed set
// knows exactly the hashes it was given.
func FuzzParse(f *testing.F) {
	f.Add([]byte("tokens:\n  - {name: a, role: viewer, sha256: " + Hash("x") + "}\n"))
	f.Add([]byte("tokens: []\n"))
	f.Add([]byte("tokens:\n  - {name: a, role: nobody}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if s.Len() > strings.Count(string(data), "sha256") {
			t.Fatalf("%d tokens from %q", s.Len(), data)
		}
		if _, ok := s.Lookup("x"); ok && !strings.Contains(string(data), Hash("x")) {
			t.Fatal("a token not in the file is known")
		}
	})
}

func FuzzFromHeader(f *testing.F) {
	f.Add("Bearer fwt_abc")
	f.Add("Basic x")
	f.Fuzz(func(t *testing.T, v string) {
		s, ok := FromHeader(v)
		if ok && (s == "" || strings.ContainsAny(s, " \t") || !strings.Contains(v, s)) {
			t.Fatalf("FromHeader(%q) = %q", v, s)
		}
		if !ok && s != "" {
			t.Fatalf("FromHeader(%q) refused but returned %q", v, s)
		}
	})
}
