package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

const secureGatewayConfig = `gateway: {id: farm-north, site: north}
uplink:
  brokers: [%s]
  batch_delay: 200ms
  state_interval: 2s
  tls: {ca_file: %s, cert_file: %s, key_file: %s}
buffer: {dir: %s, fsync: "off"}
http: {listen: %s}
buses:
  - name: dtu
    type: tcp
    address: %s
    devices:
      - {id: soil-a, profile: renke/rs-ecth-n01, unit: 1, interval: 200ms}
`

// pki is a CA with the broker's certificate and farm-north's.
type pki struct {
	ca             *testenv.CA
	server, client *testenv.Cert
}

func newPKI(t *testing.T) pki {
	ca := testenv.NewCA(t, "Fieldwatch test CA")
	return pki{ca: ca, server: ca.Server(t, "broker"), client: ca.Client(t, "farm-north")}
}

// runSecureGateway starts the gateway binary with its client certificate
// against broker, reading a simulated soil probe, and waits until at least
// 20 readings are acknowledged and none wait.
func runSecureGateway(t *testing.T, p pki, broker string) (*proc, string) {
	_, simAddr := startSim(t, &served{}, map[uint8]sim.Device{1: &sim.SoilProbe{Env: &sim.Environment{Seed: 7}}})
	dir := t.TempDir()
	gwHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(secureGatewayConfig, broker, p.ca.CertFile, p.client.CertFile, p.client.KeyFile,
		filepath.Join(dir, "buffer"), gwHTTP, simAddr)), 0o644)
	gw := start(t, "fieldwatch-gateway", "run", "-c", cfg)
	testenv.Eventually(t, "readings acknowledged over TLS", 60*time.Second, func() bool {
		var st gatewayStatus
		return testenv.GetJSON("http://"+gwHTTP+"/status", &st) == nil && st.Connected &&
			st.Buffer.AckedThrough >= 20 && st.Buffer.Readings < 20
	})
	return gw, gwHTTP
}

// stationGoesOffline kills the gateway: its last will, allowed by the ACL
// on its own state topic only, turns the station offline.
func stationGoesOffline(t *testing.T, gw *proc, cloudHTTP string) {
	var ss []station
	if err := testenv.GetJSON("http://"+cloudHTTP+"/api/v1/stations", &ss); err != nil || len(ss) != 1 || ss[0].ID != "farm-north" ||
		ss[0].State != "online" {
		t.Fatalf("stations %+v, %v", ss, err)
	}
	gw.Stop(t, syscall.SIGKILL)
	testenv.Eventually(t, "station offline by its last will", 60*time.Second, func() bool {
		return testenv.GetJSON("http://"+cloudHTTP+"/api/v1/stations", &ss) == nil && len(ss) == 1 && ss[0].State == "offline"
	})
}

// TestSecureJourneyThroughMosquitto runs Mosquitto with the shipped
// fieldwatch.conf and ACL (ports and paths rewritten for the test), the
// gateway binary on the client-certificate listener, and the cloud binary
// logged in as fieldwatch-cloud on the TLS password listener: readings are
// stored and acked, the last will works, and the cloud's password is not in
// its log.
func TestSecureJourneyThroughMosquitto(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	passwords := filepath.Join(dir, "fieldwatch.passwd")
	testenv.MosquittoPasswd(t, passwords, "fieldwatch-cloud", "cloud-Pa55-e2e", "")
	shipped := startShippedMosquitto(t, p, passwords)
	addr := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
	pw, certs := shipped.password, shipped.certs

	cloudHTTP := addr(testenv.FreePort(t))
	cloudCfg := filepath.Join(dir, "cloud.yaml")
	os.WriteFile(cloudCfg, []byte(fmt.Sprintf(`mqtt:
  url: ssl://%s
  username: fieldwatch-cloud
  password: cloud-Pa55-e2e
  tls: {ca_file: %s}
`, addr(pw), p.ca.CertFile)), 0o600)
	cloud := start(t, "fieldwatch-cloud", "run", "-c", cloudCfg, "-http", cloudHTTP, "-data", t.TempDir(), "-log-level", "debug")
	waitHealthy(t, cloudHTTP)

	gw, _ := runSecureGateway(t, p, "ssl://"+addr(certs))
	stationGoesOffline(t, gw, cloudHTTP)
	cloud.Stop(t, syscall.SIGTERM)
	if strings.Contains(cloud.Logs(), "cloud-Pa55-e2e") {
		t.Fatalf("the cloud logged its password:\n%s", cloud.Logs())
	}
}

// shippedMosquitto is Mosquitto running the shipped fieldwatch.conf and
// acl: the loopback listener for the cloud, the client-certificate one and
// the password one for gateways, each on a free port.
type shippedMosquitto struct {
	*testenv.Mosquitto
	plain, certs, password int
}

// startShippedMosquitto starts Mosquitto with deploy/mosquitto/fieldwatch.conf
// and deploy/mosquitto/acl, rewritten only for the test's ports, password
// file and certificates, and without persistence.
func startShippedMosquitto(t *testing.T, p pki, passwords string) shippedMosquitto {
	t.Helper()
	conf, err := os.ReadFile("../../deploy/mosquitto/fieldwatch.conf")
	if err != nil {
		t.Fatal(err)
	}
	plain, certs, pw := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	rewritten := strings.NewReplacer(
		"/etc/mosquitto/fieldwatch.passwd", passwords,
		"/etc/mosquitto/fieldwatch.acl", filepath.Join("..", "..", "deploy", "mosquitto", "acl"),
		"/etc/mosquitto/certs/broker.pem", p.server.CertFile,
		"/etc/mosquitto/certs/broker.key", p.server.KeyFile,
		"/etc/mosquitto/certs/fieldwatch-ca.pem", p.ca.CertFile,
		"listener 1883 127.0.0.1", fmt.Sprintf("listener %d 127.0.0.1", plain),
		"listener 8883\n", fmt.Sprintf("listener %d 127.0.0.1\n", certs),
		"listener 8884\n", fmt.Sprintf("listener %d 127.0.0.1\n", pw),
		"persistence true", "persistence false",
		"persistence_location /var/lib/mosquitto/", "",
	).Replace(string(conf))
	listeners := 0
	for _, line := range strings.Split(rewritten, "\n") {
		if strings.HasPrefix(line, "listener ") && strings.HasSuffix(line, " 127.0.0.1") {
			listeners++
		}
		if !strings.HasPrefix(line, "#") && strings.Contains(line, "/etc/") {
			listeners = -10
		}
	}
	if listeners != 3 {
		t.Fatalf("the shipped config changed shape; update this test:\n%s", rewritten)
	}
	addr := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
	return shippedMosquitto{Mosquitto: testenv.StartMosquittoConfig(t, rewritten, addr(plain), addr(certs), addr(pw)),
		plain: plain, certs: certs, password: pw}
}

// TestSecureJourneyThroughEmbeddedBroker runs the cloud binary with its
// embedded broker on a TLS listener that requires client certificates (no
// plain listener) and the gateway binary with its certificate: readings
// are stored and acked, the last will works, and a client without a
// certificate is refused and counted on /metrics.
func TestSecureJourneyThroughEmbeddedBroker(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	mqttTLS := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cloudHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cloudCfg := filepath.Join(dir, "cloud.yaml")
	os.WriteFile(cloudCfg, []byte(fmt.Sprintf(`mqtt:
  listen: ""
  tls_listener: {listen: "%s", cert_file: %s, key_file: %s, client_ca_file: %s, require_client_cert: true}
`, mqttTLS, p.server.CertFile, p.server.KeyFile, p.ca.CertFile)), 0o600)
	cloud := start(t, "fieldwatch-cloud", "run", "-c", cloudCfg, "-http", cloudHTTP, "-data", t.TempDir())
	waitHealthy(t, cloudHTTP)

	gw, _ := runSecureGateway(t, p, "ssl://"+mqttTLS)
	// A client without a certificate. Counted from what is counted now: a
	// gateway connection attempt that a loaded machine let time out
	// mid-handshake may be counted too.
	handshakes := `fieldwatch_broker_auth_failures_total{reason="tls_handshake"}`
	before := metric(t, "http://"+cloudHTTP+"/metrics", handshakes)
	c, err := tlsDial(mqttTLS, p)
	if err == nil {
		c.Close()
	}
	testenv.Eventually(t, "refusal counted", 30*time.Second, func() bool {
		m, err := testenv.Scrape("http://" + cloudHTTP + "/metrics")
		return err == nil && m[handshakes] >= before+1
	})
	stationGoesOffline(t, gw, cloudHTTP)
	cloud.Stop(t, syscall.SIGTERM)
	if code := cloud.ExitCode(); code != 0 {
		t.Fatalf("cloud exited with %d on SIGTERM", code)
	}
}

// tlsDial opens a TLS connection that trusts p's CA but shows no client
// certificate, and reads until the broker closes it.
func tlsDial(addr string, p pki) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: p.ca.Pool})
	if err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	_, err = c.Read(b[:]) // the server's verdict arrives after the client's handshake (TLS 1.3)
	return c, err
}

// TestAPITokens makes tokens with the `fieldwatch-cloud token` command and
// runs the cloud binary with the file it wrote: without a token nothing is
// served, a viewer reads but may not silence, an operator silences in its
// own name, and the refusals are counted. SIGHUP re-reads the file: a
// token added works, and a broken file is refused with the tokens kept.
func TestAPITokens(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "api-tokens.yaml")
	secret := map[string]string{}
	addToken := func(name, role string) {
		out, err := exec.Command(filepath.Join(bins, "fieldwatch-cloud"), "token", "-name", name, "-role", role,
			"-file", tokens).Output()
		if err != nil {
			t.Fatalf("token %s: %v", name, err)
		}
		secret[name] = regexp.MustCompile(`fwt_\S+`).FindString(string(out))
	}
	addToken("li.wei", "operator")
	addToken("grafana", "viewer")
	secret["nobody"] = "fwt_not-a-token-of-this-cloud"
	cfg := filepath.Join(dir, "cloud.yaml")
	os.WriteFile(cfg, []byte("http: {tokens_file: "+tokens+"}\n"), 0o644)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cloud := start(t, "fieldwatch-cloud", "run", "-c", cfg, "-http", addr, "-data", filepath.Join(dir, "data"),
		"-mqtt-listen", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)))
	waitHealthy(t, addr)
	get := func(who string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/stations", nil)
		req.Header.Set("Authorization", "Bearer "+secret[who])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	reloads := func(result string) float64 {
		return metric(t, "http://"+addr+"/metrics", `fieldwatch_api_token_reloads_total{result="`+result+`"}`)
	}

	silence := `{"matchers":[{"name":"site","op":"=","value":"pond-7"}],"starts_at":"2026-01-01T00:00:00Z",` +
		`"ends_at":"2099-01-01T00:00:00Z","comment":"maintenance"}`
	for _, tc := range []struct {
		who, method, path, body string
		code                    int
		want                    string
	}{
		{"", "GET", "/api/v1/stations", "", 401, "needs a token"},
		{"grafana", "GET", "/api/v1/stations", "", 200, "["},
		{"grafana", "POST", "/api/v1/silences", silence, 403, "needs operator"},
		{"li.wei", "POST", "/api/v1/silences", silence, 200, `"created_by":"li.wei"`},
		{"nobody", "GET", "/api/v1/alerts", "", 401, "unknown token"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, strings.NewReader(tc.body))
		if tc.who != "" {
			req.Header.Set("Authorization", "Bearer "+secret[tc.who])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s %s as %q = %d %s; want %d containing %s", tc.method, tc.path, tc.who, resp.StatusCode, body, tc.code, tc.want)
		}
	}
	for reason, want := range map[string]float64{"no_token": 1, "role": 1, "unknown_token": 1} {
		if got := metric(t, "http://"+addr+"/metrics", `fieldwatch_api_auth_failures_total{reason="`+reason+`"}`); got != want {
			t.Errorf("auth failures %s = %v, want %v", reason, got, want)
		}
	}

	addToken("wang.fang", "operator")
	if code := get("wang.fang"); code != 401 {
		t.Fatalf("a token added to the file works before a reload: %d", code)
	}
	cloud.Cmd.Process.Signal(syscall.SIGHUP)
	testenv.Eventually(t, "tokens reloaded", 30*time.Second, func() bool { return reloads("success") == 1 })
	if code := get("wang.fang"); code != 200 {
		t.Fatalf("the token added and reloaded: %d", code)
	}
	os.WriteFile(tokens, []byte("tokens:\n  - {name: x, role: boss}\n"), 0o600)
	cloud.Cmd.Process.Signal(syscall.SIGHUP)
	testenv.Eventually(t, "broken token file refused", 30*time.Second, func() bool { return reloads("failure") == 1 })
	if code := get("wang.fang"); code != 200 {
		t.Fatalf("after a broken token file was refused, a token in use: %d", code)
	}
}
