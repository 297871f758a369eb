package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestLooseSecretFiles: uplink.password_file and uplink.tls.key_file are
// used whatever their mode and noted as loose (the gateway warns at start,
// on reload and in validate) when group or others may read them: 0600 is
// quiet, 0640 and 0644 are not. A config file holding a password itself
// (uplink.password, an MQTT source's password) is checked the same way.
func TestLooseSecretFiles(t *testing.T) {
	cert := testenv.NewCA(t, "fieldwatch CA").Client(t, "farm-north")
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	head := "gateway: {id: farm-north}\nbuffer: {dir: /tmp/x}\nmqtt_sources: [{id: cs, profile: chirpstack/soil-sensor, " +
		"brokers: [\"tcp://127.0.0.1:1883\"], topic: a/b%s}]\nuplink:\n"
	files := []struct {
		field, path, uplink string
	}{
		{"uplink.password_file", pw, "  brokers: [\"tcp://127.0.0.1:1883\"]\n  password_file: " + pw + "\n"},
		{"uplink.tls.key_file", cert.KeyFile, "  brokers: [\"ssl://broker:8883\"]\n  tls: {cert_file: " + cert.CertFile +
			", key_file: " + cert.KeyFile + "}\n"},
		{"config file (it holds a password)", "", "  brokers: [\"tcp://127.0.0.1:1883\"]\n  password: s3cret\n"},
		{"config file (it holds a password)", "", "  brokers: [\"tcp://127.0.0.1:1883\"]\n"}, // the source's password
	}
	for i, f := range files {
		for _, mode := range []os.FileMode{0o600, 0o640, 0o644} {
			t.Run(f.field+"/"+mode.String(), func(t *testing.T) {
				cfgPath := filepath.Join(t.TempDir(), "x.yaml")
				source := ""
				if i == 3 {
					source = ", password: s3cret"
				}
				os.WriteFile(cfgPath, []byte(fmt.Sprintf(head, source)+f.uplink), 0o600)
				secret := f.path
				if secret == "" {
					secret = cfgPath
				}
				if err := os.Chmod(secret, mode); err != nil {
					t.Fatal(err)
				}
				c, err := LoadFile(cfgPath)
				if err != nil {
					t.Fatal(err)
				}
				var fields []string
				for _, l := range c.Loose {
					fields = append(fields, l.Field)
					if l.Path != secret || l.Mode.Perm() != mode {
						t.Errorf("loose %+v, want %s mode %v", l, secret, mode)
					}
				}
				want := []string{f.field}
				if mode == 0o600 {
					want = nil
				}
				if !slices.Equal(fields, want) {
					t.Fatalf("loose %v, want %v", fields, want)
				}
				if i == 0 && c.Uplink.Password != "s3cret" {
					t.Fatalf("password %q from the file", c.Uplink.Password)
				}
			})
		}
	}
}
