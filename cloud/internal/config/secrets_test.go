package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestLooseSecretFiles: every secret file the cloud reads — the embedded
// broker's password file, a TLS private key, the API token file, the
// InfluxDB token file — is used whatever its mode, and noted as loose
// (the cloud warns at start) when its group or others may read it: 0600
// is quiet, 0640 and 0644 are not. A config file that holds a password
// itself is checked the same way.
func TestLooseSecretFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	testenv.MosquittoPasswd(t, pw, "farm-north", "s3cret", "")
	_, hash := apitoken.New()
	tokens := filepath.Join(dir, "tokens.yaml")
	os.WriteFile(tokens, []byte("tokens:\n  - {name: alice, role: operator, sha256: "+hash+"}\n"), 0o600)
	influxToken := filepath.Join(dir, "influx.token")
	os.WriteFile(influxToken, []byte("  influx-s3cret\n"), 0o600)
	srv := testenv.NewCA(t, "fieldwatch CA").Server(t, "broker")
	hjPW := filepath.Join(dir, "logger.pw")
	os.WriteFile(hjPW, []byte("123456\n"), 0o600)
	hjPW2 := filepath.Join(dir, "logger2.pw")
	os.WriteFile(hjPW2, []byte("123456\n"), 0o600)

	files := []struct {
		field, path, body string
	}{
		{"mqtt.password_file", pw, "mqtt:\n  password_file: " + pw + "\n"},
		{"mqtt.tls_listener.key_file", srv.KeyFile, "mqtt:\n  tls_listener: {listen: \"127.0.0.1:8883\", cert_file: " +
			srv.CertFile + ", key_file: " + srv.KeyFile + "}\n"},
		{"http.tokens_file", tokens, "http:\n  tokens_file: " + tokens + "\n"},
		{"store.influxdb.token_file", influxToken, "store:\n  influxdb: {url: http://influx:8086, bucket: b, token_file: " +
			influxToken + "}\n"},
		{"hj212.loggers[0].pw_file", hjPW, "hj212:\n  listen: \"127.0.0.1:0\"\n  loggers:\n    - {mn: A1, pw_file: " + hjPW +
			", station: s}\n"},
		{"hj212.tls.key_file", srv.KeyFile, "hj212:\n  listen: \"127.0.0.1:0\"\n  tls: {cert_file: " + srv.CertFile +
			", key_file: " + srv.KeyFile + "}\n  loggers:\n    - {mn: A1, pw_file: " + hjPW2 + ", station: s}\n"},
	}
	for _, f := range files {
		for _, mode := range []os.FileMode{0o600, 0o640, 0o644} {
			t.Run(f.field+"/"+mode.String(), func(t *testing.T) {
				if err := os.Chmod(f.path, mode); err != nil {
					t.Fatal(err)
				}
				cfgPath := filepath.Join(t.TempDir(), "c.yaml")
				os.WriteFile(cfgPath, []byte(f.body), 0o644)
				c, err := LoadFile(cfgPath)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Check(); err != nil { // loads again: still one note, not two
					t.Fatal(err)
				}
				var fields []string
				for _, l := range c.Loose {
					fields = append(fields, l.Field)
					if l.Path != f.path || l.Mode.Perm() != mode {
						t.Errorf("loose %+v, want path %s mode %v", l, f.path, mode)
					}
				}
				want := []string{f.field}
				if mode == 0o600 {
					want = nil
				}
				if !slices.Equal(fields, want) {
					t.Fatalf("loose fields %v, want %v", fields, want)
				}
			})
		}
	}
	if err := os.Chmod(influxToken, 0o600); err != nil {
		t.Fatal(err)
	}
	// The token file's content, trimmed, is the token.
	cfgPath := filepath.Join(dir, "influx.yaml")
	os.WriteFile(cfgPath, []byte(files[3].body), 0o600)
	c, err := LoadFile(cfgPath)
	if err != nil || c.Store.InfluxDB.Token != "influx-s3cret" {
		t.Fatalf("token from file: %q, %v", c.Store.InfluxDB.Token, err)
	}

	// A config file that holds a password is itself a secret file.
	inline := filepath.Join(dir, "inline.yaml")
	os.WriteFile(inline, []byte("mqtt: {url: tcp://broker:1883, username: u, password: hunter2}\n"), 0o644)
	os.Chmod(inline, 0o644)
	if c, err = LoadFile(inline); err != nil || len(c.Loose) != 1 || c.Loose[0].Path != inline {
		t.Fatalf("config file with a password, mode 0644: loose %v, %v", c.Loose, err)
	}
	os.Chmod(inline, 0o600)
	if c, err = LoadFile(inline); err != nil || len(c.Loose) != 0 {
		t.Fatalf("config file with a password, mode 0600: loose %v, %v", c.Loose, err)
	}
	hjInline := filepath.Join(dir, "hj212.yaml")
	os.WriteFile(hjInline, []byte("hj212:\n  listen: \"127.0.0.1:0\"\n  loggers:\n    - {mn: A1, pw: \"123456\", station: s}\n"), 0o644)
	os.Chmod(hjInline, 0o644)
	if c, err = LoadFile(hjInline); err != nil || len(c.Loose) != 1 || c.Loose[0].Path != hjInline {
		t.Fatalf("config file with an HJ 212 logger's pw, mode 0644: loose %v, %v", c.Loose, err)
	}

	// token and token_file together are refused.
	both := filepath.Join(dir, "both.yaml")
	os.WriteFile(both, []byte("store:\n  influxdb: {url: http://influx:8086, bucket: b, token: x,\n    token_file: "+influxToken+"}\n"), 0o600)
	if _, err := LoadFile(both); err == nil || !strings.Contains(err.Error(), "give token or token_file, not both") {
		t.Fatalf("token and token_file: %v", err)
	}
}
