package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
)

var secretRE = regexp.MustCompile(`fwt_[A-Za-z0-9_-]{43}`)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// `token -file` creates the file, appends to it, and the secrets it
// prints are the ones the file knows, with their roles.
func TestTokenAddsToFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api-tokens.yaml")
	code, out, errs := runCLI("token", "-name", "alice", "-role", "operator", "-file", path)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	alice := secretRE.FindString(out)
	code, out, errs = runCLI("token", "-name", "grafana", "-role", "viewer", "-file", path)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	grafana := secretRE.FindString(out)
	set, err := apitoken.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := set.Lookup(alice); !ok || c != (apitoken.Caller{Name: "alice", Role: apitoken.Operator}) {
		t.Fatalf("alice's secret %q: %+v %v", alice, c, ok)
	}
	if c, ok := set.Lookup(grafana); !ok || c != (apitoken.Caller{Name: "grafana", Role: apitoken.Viewer}) {
		t.Fatalf("grafana's secret %q: %+v %v", grafana, c, ok)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), alice) || strings.Contains(string(data), grafana) {
		t.Fatal("the file holds a secret")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}

	// A name already taken: refused, the file unchanged.
	code, _, errs = runCLI("token", "-name", "alice", "-role", "viewer", "-file", path)
	if after, _ := os.ReadFile(path); code != ExitConfig || !strings.Contains(errs, "already has a token named alice") || !bytes.Equal(after, data) {
		t.Fatalf("duplicate name: exit %d %s; file changed: %v", code, errs, !bytes.Equal(after, data))
	}
}

func TestTokenRefusals(t *testing.T) {
	dir := t.TempDir()
	flow := filepath.Join(dir, "flow.yaml")
	os.WriteFile(flow, []byte("tokens: []\n"), 0o600)
	broken := filepath.Join(dir, "broken.yaml")
	os.WriteFile(broken, []byte("tokens:\n  - {name: a, role: boss}\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no role", []string{"-name", "a"}, ExitUsage, "usage:"},
		{"bad role", []string{"-name", "a", "-role", "admin"}, ExitUsage, `-role: "admin" is not viewer or operator`},
		{"role none", []string{"-name", "a", "-role", "none"}, ExitUsage, "is not viewer or operator"},
		{"bad name", []string{"-name", "a b", "-role", "viewer"}, ExitUsage, `"a b" is not a name`},
		{"list not at the end", []string{"-name", "a", "-role", "viewer", "-file", flow}, ExitConfig, "Add this line under tokens: by hand"},
		{"broken file", []string{"-name", "a", "-role", "viewer", "-file", broken}, ExitConfig, "is not a valid token file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(append([]string{"token"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errs, tc.want) || secretRE.MatchString(out) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q, no secret", code, out, errs, tc.code, tc.want)
			}
		})
	}
	code, out, _ := runCLI("token", "-name", "ops", "-role", "operator")
	line := strings.TrimSpace(out[strings.LastIndex(out, "\n  - "):])
	if code != ExitOK || !secretRE.MatchString(out) || !strings.HasPrefix(line, "- {name: ops, role: operator, sha256: ") {
		t.Fatalf("without -file: exit %d %q", code, out)
	}
}
