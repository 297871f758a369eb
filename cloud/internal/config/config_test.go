package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	c, err := LoadFile("")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if c.MQTT.URL != "" || c.Store.InfluxDB.URL != "" {
		t.Fatal("defaults are not embedded")
	}
}

func TestShippedExampleLoads(t *testing.T) {
	c, err := LoadFile("../../../deploy/cloud.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.InfluxDB.Bucket != "fieldwatch" || c.MQTT.URL == "" || c.Ingest.MaxFuture != 10*time.Minute || c.Ingest.MaxDevices != 1024 {
		t.Fatalf("example decoded wrong: %+v", c)
	}
}

// TestDemoConfigLoads keeps the demo cloud's config (its HJ 212 listener)
// valid.
func TestDemoConfigLoads(t *testing.T) {
	c, err := LoadFile("../../../deploy/demo/cloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.HJ212.Listen == "" || len(c.HJ212.Loggers) != 1 {
		t.Fatalf("demo config decoded wrong: %+v", c.HJ212)
	}
}

// fileCase is a config file's body and the error it gives ("" for none).
type fileCase struct {
	name, body, want string
}

// loadCases loads each case's body as c.yaml and checks its error.
func loadCases(t *testing.T, tests []fileCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(tc.body), 0o644)
			_, err := LoadFile(path)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFile(t *testing.T) {
	loadCases(t, []fileCase{
		{"good", "mqtt: {url: tcp://broker:1883}\nstore: {influxdb: {url: http://influx:8086, bucket: fieldwatch}}\n", ""},
		{"typo", "htpp: {listen: 127.0.0.1:8080}\n", `c.yaml:1: htpp: unknown field (did you mean "http"?)`},
		{"bad url", "mqtt:\n  url: broker\n", `c.yaml:2: mqtt.url: "broker" is not a broker URL`},
		{"influx without bucket", "store:\n  influxdb:\n    url: http://x:8086\n", "c.yaml:2: store.influxdb.bucket: is required"},
		{"workers", "mqtt: {workers: 0}\n", "mqtt.workers: 0 is outside 1..256"},
		{"lookback", "store: {lookback: 30}\n", `store.lookback: "30" has no unit`},
		{"ingest", "ingest:\n  max_future: 2h\n  max_devices: 5000\n", ""},
		{"max_future too short", "data_dir: d\ningest:\n  max_future: 10s\n", "c.yaml:3: ingest.max_future: 10s is outside 1m0s..8760h0m0s"},
		{"max_future no unit", "ingest:\n  max_future: 600\n", `c.yaml:2: ingest.max_future: "600" has no unit`},
		{"max_devices", "ingest:\n  max_future: 5m\n  max_devices: 0\n", "c.yaml:3: ingest.max_devices: 0 is outside 1..1000000"},
		{"limits", "http:\n  limits: {read_timeout: 5s, idle_timeout: 10s, max_body_bytes: 1MiB}\n", ""},
		{"negative timeout", "http:\n  limits:\n    idle_timeout: -1s\n", "c.yaml:3: http.limits.idle_timeout: must not be negative"},
		{"huge body", "http:\n  limits:\n    max_body_bytes: 1GiB\n", "c.yaml:3: http.limits.max_body_bytes: 1GiB is outside 0..64MiB"},
		{"limits typo", "http:\n  limits: {read_timout: 5s}\n", `read_timout: unknown field (did you mean "read_timeout"?)`},
		{"timezone", "timezone: Europe/Berlin\n", ""},
		{"nats", "nats:\n  urls: [nats://n1:4222, tls://n2:4222]\n  partitions: 32\n", ""},
		{"nats bad url", "nats:\n  urls:\n    - http://n1:4222\n", `c.yaml:3: nats.urls[0]: "http://n1:4222" is not a nats:// or tls:// URL`},
		{"nats partitions", "nats:\n  urls: [nats://n1:4222]\n  partitions: 0\n", "c.yaml:3: nats.partitions: 0 is outside 1..1024"},
		{"nats replicas", "nats:\n  urls: [nats://n1:4222]\n  replicas: 2\n", "c.yaml:3: nats.replicas: 2: JetStream replicates to 1, 3 or 5 nodes"},
		{"nats pinned_ttl", "nats:\n  urls: [nats://n1:4222]\n  pinned_ttl: 100ms\n", "c.yaml:3: nats.pinned_ttl: 100ms is under 1s"},
		{"nats password without user", "nats:\n  urls: [nats://n1:4222]\n  password: x\n", "nats.username: is required with a password"},
		{"nats mqtt", "nats:\n  urls: [nats://n1:4222]\n  mqtt:\n    urls: [tcp://n1:1883, ssl://n2:8883]\n    username: fleet\n    password: x\n", ""},
		{"nats mqtt scheme", "nats:\n  urls: [nats://n1:4222]\n  mqtt:\n    urls:\n      - tcp://n1:1883\n      - http://n2:1883\n",
			`c.yaml:6: nats.mqtt.urls[1]: "http://n2:1883": scheme must be tcp, mqtt, ssl, tls or mqtts`},
		{"nats mqtt no port", "nats:\n  urls: [nats://n1:4222]\n  mqtt:\n    urls:\n      - tcp://n1\n",
			`c.yaml:5: nats.mqtt.urls[0]: "tcp://n1" is not an MQTT listener URL such as tcp://n1:1883`},
		{"nats mqtt credentials in url", "nats:\n  urls: [nats://n1:4222]\n  mqtt:\n    urls:\n      - tcp://fleet:pw@n1:1883\n",
			`c.yaml:5: nats.mqtt.urls[0]: "tcp://fleet:xxxxx@n1:1883" carries credentials`},
		{"nats mqtt without nats", "nats:\n  mqtt:\n    urls: [tcp://n1:1883]\n", "c.yaml:3: nats.mqtt.urls: needs nats.urls"},
		{"nats mqtt fields without urls", "nats:\n  urls: [nats://n1:4222]\n  mqtt:\n    username: fleet\n",
			"nats.mqtt.urls: is required with nats.mqtt's other fields"},
		{"nats mqtt password without user", "nats:\n  urls: [nats://n1:4222]\n  mqtt:\n    urls: [tcp://n1:1883]\n    password: x\n",
			"nats.mqtt.username: is required with a password"},
		{"nats mqtt tls on tcp", "nats:\n  urls: [nats://n1:4222]\n  mqtt:\n    urls: [tcp://n1:1883]\n    tls:\n      server_name: n1\n",
			"c.yaml:5: nats.mqtt.tls: needs TLS listener URLs"},
		{"bad timezone", "timezone: Beijing\n", `c.yaml:1: timezone: "Beijing" is not a time zone`},
		{"empty timezone", "timezone: \"\"\n", "c.yaml:1: timezone: is required"},
	})
}

// TestNotGateways: the ingestor's own user, the alert readers, the listed
// non-gateway users and the shipped ACL's two service users are refused as
// gateways; a name that cannot be a gateway id is refused in the file. The
// ingestor's subscription is not shared unless asked.
func TestNotGateways(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte("mqtt: {url: tcp://broker:1883, username: cloud-2, non_gateway_users: [grafana, fieldwatch-cloud]}\n"), 0o644)
	c, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.MQTT.NotGateways(), " "); got != "cloud-2 fieldwatch-alerts fieldwatch-cloud grafana" {
		t.Fatalf("not gateways: %s", got)
	}
	if c.MQTT.Shared || Default().MQTT.Shared {
		t.Fatal("the ingestor's subscription is shared by default")
	}
	os.WriteFile(path, []byte("mqtt:\n  url: tcp://broker:1883\n  non_gateway_users: [ok, \"a/b\"]\n"), 0o644)
	if _, err := LoadFile(path); err == nil || !strings.Contains(err.Error(), `c.yaml:3: mqtt.non_gateway_users[1]: "a/b" is not a user name`) {
		t.Fatalf("error %v", err)
	}
}

// TestNATSMQTTCredentials: the replicas' MQTT client logs in with
// nats.mqtt's own user, read from its password file, or else as
// nats.username; a config with password files passes Check again after
// loading (as app.Run calls it).
func TestNATSMQTTCredentials(t *testing.T) {
	dir := t.TempDir()
	natsPW, fleetPW := filepath.Join(dir, "nats.pw"), filepath.Join(dir, "fleet.pw")
	os.WriteFile(natsPW, []byte("cloud-secret\n"), 0o600)
	os.WriteFile(fleetPW, []byte("fleet-secret\n"), 0o600)
	for _, tc := range []struct {
		name, body, user, password string
	}{
		{"own user", "nats:\n  urls: [nats://n1:4222]\n  username: cloud\n  password_file: " + natsPW +
			"\n  mqtt:\n    urls: [tcp://n1:1883]\n    username: fleet\n    password_file: " + fleetPW + "\n",
			"fleet", "fleet-secret"},
		{"nats user", "nats:\n  urls: [nats://n1:4222]\n  username: cloud\n  password_file: " + natsPW +
			"\n  mqtt:\n    urls: [tcp://n1:1883]\n", "cloud", "cloud-secret"},
		{"no user", "nats:\n  urls: [nats://n1:4222]\n  mqtt:\n    urls: [tcp://n1:1883]\n", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte("data_dir: "+dir+"\n"+tc.body), 0o644)
			c, err := LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Check(); err != nil {
				t.Fatalf("Check after loading: %v", err)
			}
			if m := c.NATS.MQTT; m.Username != tc.user || m.Password != tc.password || m.ClientTLS != nil {
				t.Fatalf("MQTT logs in as %q/%q (TLS %v), want %q/%q", m.Username, m.Password, m.ClientTLS != nil,
					tc.user, tc.password)
			}
		})
	}
}
