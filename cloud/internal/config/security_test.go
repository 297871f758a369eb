package config

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestSecurity loads the embedded broker's password file and TLS listener
// and the ingestor's TLS to an external broker; every refusal names its
// field and line, and exposing the embedded broker without credentials is
// refused with the reason.
func TestSecurity(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	testenv.MosquittoPasswd(t, pw, "farm-north", "s3cret", "")
	badPW := filepath.Join(dir, "bad-passwd")
	os.WriteFile(badPW, []byte("farm-north:plain\n"), 0o600)
	secret, hash := apitoken.New()
	tokens, badTokens, noTokens := filepath.Join(dir, "tokens.yaml"), filepath.Join(dir, "bad-tokens.yaml"), filepath.Join(dir, "no-tokens.yaml")
	os.WriteFile(tokens, []byte("tokens:\n  - {name: alice, role: operator, sha256: "+hash+"}\n"), 0o600)
	os.WriteFile(badTokens, []byte("tokens:\n  - {name: alice, role: operator, sha256: "+secret+"}\n"), 0o600)
	os.WriteFile(noTokens, []byte("tokens: []\n"), 0o600)
	anonymous := func(want apitoken.Role, tokens int) func(t *testing.T, c *Config) {
		return func(t *testing.T, c *Config) {
			if got := c.HTTP.AnonymousRole(); got != want || c.HTTP.Tokens.Len() != tokens {
				t.Fatalf("anonymous role %v with %d tokens; want %v with %d", got, c.HTTP.Tokens.Len(), want, tokens)
			}
		}
	}
	ca := testenv.NewCA(t, "fieldwatch CA")
	srv, other := ca.Server(t, "broker"), ca.Client(t, "x")
	sub := func(s string) string {
		return strings.NewReplacer("$TOKENS", tokens, "$BADTOKENS", badTokens, "$NOTOKENS", noTokens, "$PW", pw, "$BADPW", badPW, "$CA", ca.CertFile, "$CERT", srv.CertFile, "$KEY", srv.KeyFile,
			"$OTHERKEY", other.KeyFile).Replace(s)
	}
	tests := []struct {
		name, body, want string
		check            func(t *testing.T, c *Config)
	}{
		{"defaults: loopback, no password file", "mqtt: {}\n", "", func(t *testing.T, c *Config) {
			if c.MQTT.Users != nil || c.MQTT.ServerTLS != nil || c.MQTT.ClientTLS != nil {
				t.Fatalf("%+v", c.MQTT)
			}
		}},
		{"password file on all interfaces", "mqtt: {listen: 0.0.0.0:1883, password_file: $PW}\n", "", func(t *testing.T, c *Config) {
			if c.MQTT.Users == nil || c.MQTT.Users.Check("farm-north", "s3cret") != nil {
				t.Fatalf("users not loaded: %+v", c.MQTT)
			}
		}},
		{"TLS listener requiring client certificates", `mqtt:
  listen: ""
  tls_listener: {listen: "0.0.0.0:8883", cert_file: $CERT, key_file: $KEY, client_ca_file: $CA, require_client_cert: true}
`, "", func(t *testing.T, c *Config) {
			s := c.MQTT.ServerTLS
			if s == nil || len(s.Certificates) != 1 || s.ClientCAs == nil || s.ClientAuth != tls.RequireAndVerifyClientCert {
				t.Fatalf("server TLS %+v", s)
			}
		}},
		{"external TLS broker", "mqtt: {url: ssl://broker:8883, username: fieldwatch-cloud, tls: {ca_file: $CA, server_name: mqtt.example}}\n", "",
			func(t *testing.T, c *Config) {
				if ct := c.MQTT.ClientTLS; ct == nil || ct.RootCAs == nil || ct.ServerName != "mqtt.example" {
					t.Fatalf("client TLS %+v", ct)
				}
			}},
		{"exposed without credentials", "mqtt:\n  listen: 0.0.0.0:1883\n",
			"c.yaml:2: mqtt.listen: 0.0.0.0:1883 is not a loopback address and the embedded broker would admit any client under the name it gives", nil},
		{"exposed, accepted", "mqtt: {listen: 0.0.0.0:1883, allow_anonymous: true}\n", "", nil},
		{"TLS exposed with optional certificates", "mqtt:\n  tls_listener:\n    listen: :8883\n    cert_file: $CERT\n    key_file: $KEY\n",
			"c.yaml:3: mqtt.tls_listener.listen: :8883 is not a loopback address", nil},
		{"bad password file", "mqtt:\n  password_file: $BADPW\n", `c.yaml:2: mqtt.password_file: $BADPW:1: user "farm-north": the password is not hashed`, nil},
		{"missing password file", "mqtt:\n  password_file: /nonexistent\n", "c.yaml:2: mqtt.password_file: cannot read password file", nil},
		{"key of another certificate", "mqtt:\n  tls_listener: {listen: \"127.0.0.1:8883\", cert_file: $CERT,\n    key_file: $OTHERKEY}\n",
			"c.yaml:3: mqtt.tls_listener.key_file: $OTHERKEY: private key does not match public key", nil},
		{"require without CA", "mqtt:\n  tls_listener: {listen: \"127.0.0.1:8883\", cert_file: $CERT, key_file: $KEY,\n    require_client_cert: true}\n",
			"mqtt.tls_listener.client_ca_file: require_client_cert needs the CA", nil},
		{"no listener at all", "mqtt: {listen: \"\"}\n", "mqtt.listen: \"\" is not host:port", nil},
		{"client TLS with a plain broker", "mqtt:\n  url: tcp://broker:1883\n  tls: {ca_file: $CA}\n", "c.yaml:3: mqtt.tls: needs a TLS broker URL", nil},
		{"broker settings with an external broker", "mqtt:\n  url: tcp://broker:1883\n  password_file: $PW\n",
			"c.yaml:2: mqtt.url: password_file, allow_anonymous, alert_readers, tls_listener, connect_timeout and max_connections are for the embedded broker", nil},
		{"broker limits", "mqtt: {connect_timeout: 5s, max_connections: 500}\n", "", func(t *testing.T, c *Config) {
			if c.MQTT.ConnectTimeout != 5*time.Second || c.MQTT.MaxConnections != 500 {
				t.Fatalf("connect_timeout %v, max_connections %d", c.MQTT.ConnectTimeout, c.MQTT.MaxConnections)
			}
		}},
		{"negative limit", "mqtt:\n  max_connections: -1\n", "c.yaml:2: mqtt.max_connections: -1 is negative", nil},
		{"broker limits with an external broker", "mqtt:\n  url: tcp://broker:1883\n  connect_timeout: 5s\n",
			"mqtt.url: password_file, allow_anonymous, alert_readers, tls_listener, connect_timeout and max_connections are for the embedded broker", nil},
		{"client credentials with the embedded broker", "mqtt:\n  username: x\n", "mqtt.tls: username, password and tls are for an external broker", nil},
		{"API on loopback without tokens: anonymous operator", "http: {listen: 127.0.0.1:8080}\n", "", anonymous(apitoken.Operator, 0)},
		{"API exposed without tokens: anonymous viewer", "http: {listen: 0.0.0.0:8080}\n", "", anonymous(apitoken.Viewer, 0)},
		{"API with tokens: anonymous none", "http: {listen: 0.0.0.0:8080, tokens_file: $TOKENS}\n", "", anonymous(apitoken.None, 1)},
		{"API with tokens, anonymous viewer", "http: {listen: 0.0.0.0:8080, tokens_file: $TOKENS, anonymous: viewer}\n", "",
			anonymous(apitoken.Viewer, 1)},
		{"bad anonymous role", "http:\n  anonymous: admin\n", `c.yaml:2: http.anonymous: "admin" is not a role`, nil},
		{"token file holding a secret", "http:\n  tokens_file: $BADTOKENS\n",
			"c.yaml:2: http.tokens_file: $BADTOKENS:2: tokens[0].sha256: is not 64 lowercase hex digits", nil},
		{"token file without tokens", "http:\n  tokens_file: $NOTOKENS\n", "c.yaml:2: http.tokens_file: $NOTOKENS lists no tokens", nil},
		{"missing token file", "http:\n  tokens_file: /nonexistent\n", "c.yaml:2: http.tokens_file: open /nonexistent", nil},
		{"credentials in the URL", "mqtt: {url: \"tcp://cloud:hunter2@broker:1883\"}\n", `"tcp://cloud:xxxxx@broker:1883" carries credentials`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(sub(tc.body)), 0o644)
			c, err := LoadFile(path)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Check(); err != nil {
					t.Fatal(err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), sub(tc.want)) {
				t.Fatalf("error %v\nwant %q", err, sub(tc.want))
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}
