package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestUplinkSecurity loads uplink credentials and TLS files: good ones are
// read and parsed at load, bad ones are errors on the field's line.
func TestUplinkSecurity(t *testing.T) {
	ca := testenv.NewCA(t, "fieldwatch CA")
	cert := ca.Client(t, "farm-north")
	other := ca.Client(t, "farm-south")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pwFile := write("password", "s3cret\n")
	emptyPW := write("empty", "\n")
	notPEM := write("not.pem", "hello\n")
	keyAsCA := cert.KeyFile
	head := "gateway: {id: farm-north}\nbuffer: {dir: /tmp/x}\nmqtt_sources: [{id: cs, profile: chirpstack/soil-sensor, brokers: [\"tcp://127.0.0.1:1883\"], topic: a/b}]\nuplink:\n"
	tests := []struct {
		name, uplink, want string
		check              func(t *testing.T, c *Config)
	}{
		{"username defaults to the gateway id", `  brokers: ["tcp://127.0.0.1:1883"]` + "\n", "", func(t *testing.T, c *Config) {
			if c.Uplink.Username != "farm-north" || c.Uplink.Password != "" || c.Uplink.TLS.Certificate != nil {
				t.Fatalf("uplink %+v", c.Uplink)
			}
		}},
		{"full TLS and a password file", `  brokers: ["ssl://broker.example:8883", "wss://broker.example:443/mqtt"]
  username: north
  password_file: ` + pwFile + `
  tls: {ca_file: ` + ca.CertFile + `, cert_file: ` + cert.CertFile + `, key_file: ` + cert.KeyFile + `, server_name: mqtt.example}
`, "", func(t *testing.T, c *Config) {
			u := c.Uplink
			if u.Username != "north" || u.Password != "s3cret" || u.TLS.RootCAs == nil || u.TLS.Certificate == nil ||
				u.TLS.Certificate.Leaf.Subject.CommonName != "farm-north" || u.TLS.ServerName != "mqtt.example" {
				t.Fatalf("uplink %+v", u)
			}
		}},
		{"TLS with the system roots", `  brokers: ["mqtts://broker.example:8883"]` + "\n", "", func(t *testing.T, c *Config) {
			if c.Uplink.TLS.RootCAs != nil || !IsTLS(c.Uplink.Brokers[0]) {
				t.Fatalf("uplink %+v", c.Uplink)
			}
		}},
		{"client certificate to a plain broker", `  brokers: ["ssl://a:8883", "tcp://b:1883"]
  tls: {cert_file: ` + cert.CertFile + `, key_file: ` + cert.KeyFile + "}\n",
			"x.yaml:6: uplink.tls.cert_file: TLS settings need TLS brokers (ssl://, tls://, mqtts://, wss://), and tcp://b:1883 is not one", nil},
		{"CA for a plain broker", `  brokers: ["ws://b:80"]
  tls: {ca_file: ` + ca.CertFile + "}\n", "x.yaml:6: uplink.tls.ca_file: TLS settings need TLS brokers", nil},
		{"certificate without key", `  brokers: ["ssl://a:8883"]
  tls:
    cert_file: ` + cert.CertFile + "\n", "x.yaml:6: uplink.tls.key_file: cert_file and key_file go together", nil},
		{"CA file not PEM", `  brokers: ["ssl://a:8883"]
  tls:
    ca_file: ` + notPEM + "\n", "x.yaml:7: uplink.tls.ca_file: " + notPEM + " holds no PEM certificate", nil},
		{"CA file is a key", `  brokers: ["ssl://a:8883"]
  tls:
    ca_file: ` + keyAsCA + "\n", "x.yaml:7: uplink.tls.ca_file: " + keyAsCA + ": PEM block 1 is a PRIVATE KEY, not a CERTIFICATE", nil},
		{"key of another certificate", `  brokers: ["ssl://a:8883"]
  tls:
    cert_file: ` + cert.CertFile + `
    key_file: ` + other.KeyFile + "\n", "x.yaml:8: uplink.tls.key_file: " + other.KeyFile + ": private key does not match public key", nil},
		{"missing key file", `  brokers: ["ssl://a:8883"]
  tls: {cert_file: ` + cert.CertFile + `, key_file: /nonexistent/key.pem}` + "\n", "x.yaml:6: uplink.tls.key_file: open /nonexistent/key.pem", nil},
		{"missing password file", `  brokers: ["tcp://a:1883"]
  password_file: /nonexistent/pw` + "\n", "x.yaml:6: uplink.password_file: open /nonexistent/pw", nil},
		{"empty password file", `  brokers: ["tcp://a:1883"]
  password_file: ` + emptyPW + "\n", "uplink.password_file: " + emptyPW + " is empty", nil},
		{"password twice", `  brokers: ["tcp://a:1883"]
  password: x
  password_file: ` + pwFile + "\n", "x.yaml:7: uplink.password_file: give password or password_file, not both", nil},
		{"credentials in the URL", `  brokers: ["tcp://north:hunter2@a:1883"]` + "\n",
			`x.yaml:5: uplink.brokers[0]: "tcp://north:xxxxx@a:1883" carries credentials`, nil},
		{"credentials in an MQTT source's URL", `  brokers: ["tcp://a:1883"]` + "\n",
			`x.yaml:3: mqtt_sources[0].brokers[0]: "tcp://cs:xxxxx@b:1883" carries credentials`, nil},
		{"reserved id", `  brokers: ["tcp://a:1883"]` + "\n", `x.yaml:1: gateway.id: "alerts" is reserved`, nil},
	}
	edits := map[string][2]string{ // what those cases change in head
		"credentials in an MQTT source's URL": {"tcp://127.0.0.1:1883", "tcp://cs:hunter2@b:1883"},
		"reserved id":                         {"id: farm-north", "id: alerts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := head
			if e, ok := edits[tc.name]; ok {
				h = strings.Replace(h, e[0], e[1], 1)
			}
			c, err := Load("x.yaml", []byte(h+tc.uplink))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, c)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error shows a password: %v", err)
			}
		})
	}
}
