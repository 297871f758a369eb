package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if c.Store.InfluxDB.Bucket != "fieldwatch" || c.MQTT.URL == "" {
		t.Fatalf("example decoded wrong: %+v", c)
	}
}

func TestFile(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"good", "mqtt: {url: tcp://broker:1883}\nstore: {influxdb: {url: http://influx:8086, bucket: fieldwatch}}\n", ""},
		{"typo", "htpp: {listen: 127.0.0.1:8080}\n", `c.yaml:1: htpp: unknown field (did you mean "http"?)`},
		{"bad url", "mqtt:\n  url: broker\n", `c.yaml:2: mqtt.url: "broker" is not a broker URL`},
		{"influx without bucket", "store:\n  influxdb:\n    url: http://x:8086\n", "c.yaml:2: store.influxdb.bucket: is required"},
		{"workers", "mqtt: {workers: 0}\n", "mqtt.workers: 0 is outside 1..256"},
		{"lookback", "store: {lookback: 30}\n", `store.lookback: "30" has no unit`},
		{"limits", "http:\n  limits: {read_timeout: 5s, idle_timeout: 10s, max_body_bytes: 1MiB}\n", ""},
		{"negative timeout", "http:\n  limits:\n    idle_timeout: -1s\n", "c.yaml:3: http.limits.idle_timeout: must not be negative"},
		{"huge body", "http:\n  limits:\n    max_body_bytes: 1GiB\n", "c.yaml:3: http.limits.max_body_bytes: 1GiB is outside 0..64MiB"},
		{"limits typo", "http:\n  limits: {read_timout: 5s}\n", `read_timout: unknown field (did you mean "read_timeout"?)`},
	}
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
