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
