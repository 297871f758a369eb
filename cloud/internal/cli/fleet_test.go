package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// TestFleetKeygen: the private key goes to a new file of mode 0600 and is
// never printed; the printed public key is the key's; an existing file is
// never overwritten; push refuses a key file that is not an ed25519 key.
func TestFleetKeygen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.key")
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"fleet", "keygen", "-key", path}, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, mode %v", err, fi.Mode())
	}
	priv, err := readSigningKey(path, &errb)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	pub, err := telemetry.ParsePublicKey(lines[len(lines)-1])
	if err != nil || !pub.Equal(priv.Public()) {
		t.Fatalf("printed public key %q: %v", lines[len(lines)-1], err)
	}
	data, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(data), "\n")[1:] {
		if l != "" && !strings.HasPrefix(l, "-----") && strings.Contains(out.String(), l) {
			t.Fatal("keygen printed the private key")
		}
	}
	before := string(data)
	if code := Main(context.Background(), []string{"fleet", "keygen", "-key", path}, &out, &errb); code != ExitFail {
		t.Fatalf("keygen over an existing file: exit %d", code)
	}
	if data, _ := os.ReadFile(path); string(data) != before {
		t.Fatal("keygen overwrote an existing key")
	}
	notKey := filepath.Join(dir, "not.key")
	os.WriteFile(notKey, []byte("hello\n"), 0o600)
	errb.Reset()
	code := Main(context.Background(), []string{"fleet", "push", "-gateway", "g", "-config", path, "-key", notKey, "-version", "1"}, &out, &errb)
	if code != ExitFail || !strings.Contains(errb.String(), "no PEM PRIVATE KEY") {
		t.Fatalf("push with a bad key: exit %d, %s", code, errb.String())
	}
}

// TestFleetReleaseRefuses: fleet release refuses what it cannot sign, and
// a target that is not GOOS/arch, before it sends anything.
func TestFleetReleaseRefuses(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "fleet.key")
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"fleet", "keygen", "-key", key}, &out, &errb); code != ExitOK {
		t.Fatalf("keygen: %s", errb.String())
	}
	bin := filepath.Join(dir, "gw")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	// -api names a port nothing listens on: nothing may get that far.
	base := []string{"fleet", "release", "-api", "http://127.0.0.1:1", "-key", key, "-gateway", "gw1"}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-version", "1.0", "-artifact", "linux/arm64=" + bin}, ExitUsage, "usage:"},                        // no serial
		{[]string{"-serial", "1", "-artifact", "linux/arm64=" + bin}, ExitUsage, "usage:"},                           // no version
		{[]string{"-version", "1.0", "-serial", "1"}, ExitUsage, "usage:"},                                           // no artifact
		{[]string{"-version", "1.0", "-serial", "1", "-artifact", "linux/arm64"}, ExitUsage, "is not TARGET=FILE"},   // no file
		{[]string{"-version", "1.0", "-serial", "1", "-artifact", "linux/arm64=" + dir + "/none"}, ExitFail, "none"}, // missing
		{[]string{"-version", "1.0", "-serial", "1", "-artifact", "arm64=" + bin}, ExitUsage, "is not GOOS/arch"},
		{[]string{"-version", "1.0 beta", "-serial", "1", "-artifact", "linux/arm64=" + bin}, ExitUsage, "-version:"},
	} {
		out.Reset()
		errb.Reset()
		if code := Main(context.Background(), append(append([]string{}, base...), tc.args...), &out, &errb); code != tc.code ||
			!strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}
