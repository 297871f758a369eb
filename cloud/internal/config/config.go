// Package config is the cloud's configuration. Every field has a default,
// so `fieldwatch-cloud run` with no file runs on embedded defaults: an
// in-process MQTT broker and an SQLite store in data_dir. A file (strict
// YAML, errors with file:line) and flags override the defaults.
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// Config is fieldwatch-cloud's configuration.
type Config struct {
	// DataDir holds the embedded store (fieldwatch.db).
	DataDir string `yaml:"data_dir"`
	HTTP    HTTP   `yaml:"http"`
	MQTT    MQTT   `yaml:"mqtt"`
	Store   Store  `yaml:"store"`
}

// HTTP serves the API, the dashboard, /metrics and /healthz.
type HTTP struct {
	Listen string `yaml:"listen"`
}

// MQTT is where the gateways' batches arrive.
type MQTT struct {
	// URL of an external broker (tcp://host:1883). Empty runs the embedded
	// broker on Listen.
	URL      string `yaml:"url"`
	Listen   string `yaml:"listen"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	ClientID string `yaml:"client_id"`
	// Shared subscribes through $share/ingest/… so replicas split the load.
	Shared bool `yaml:"shared"`
	// Workers is how many batches are written to the store at once.
	Workers int `yaml:"workers"`
}

// Store is where readings are kept.
type Store struct {
	// InfluxDB, when its URL is set, replaces the embedded store.
	InfluxDB InfluxDB `yaml:"influxdb"`
	// Lookback is how far back the registry looks for latest values at start.
	Lookback time.Duration `yaml:"lookback"`
}

// InfluxDB locates an InfluxDB 2.x, or 1.8+ with Flux enabled.
type InfluxDB struct {
	URL    string `yaml:"url"`
	Token  string `yaml:"token"`
	Org    string `yaml:"org"`
	Bucket string `yaml:"bucket"`
}

// Default returns the embedded-defaults configuration.
func Default() *Config {
	return &Config{
		DataDir: "fieldwatch-data",
		HTTP:    HTTP{Listen: "127.0.0.1:8080"},
		MQTT:    MQTT{Listen: "127.0.0.1:1883", Shared: true, Workers: 4},
		Store:   Store{Lookback: 30 * 24 * time.Hour},
	}
}

// LoadFile reads a config file over the defaults; path "" gives the defaults.
func LoadFile(path string) (*Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	if err := yamlconf.Decode(path, data, c); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate implements yamlconf.Validator; callers that change fields after
// loading (flags) call Check.
func (c *Config) Validate(r *yamlconf.Report) {
	hostPort := func(field, v string, required bool) {
		if v == "" && !required {
			return
		}
		if _, _, err := net.SplitHostPort(v); err != nil {
			r.Errorf(field, "%q is not host:port", v)
		}
	}
	hostPort("http.listen", c.HTTP.Listen, true)
	if c.MQTT.URL == "" {
		hostPort("mqtt.listen", c.MQTT.Listen, true)
	} else if u, err := url.Parse(c.MQTT.URL); err != nil || u.Host == "" || u.Port() == "" {
		r.Errorf("mqtt.url", "%q is not a broker URL such as tcp://host:1883", c.MQTT.URL)
	}
	if c.MQTT.Workers < 1 || c.MQTT.Workers > 256 {
		r.Errorf("mqtt.workers", "%d is outside 1..256", c.MQTT.Workers)
	}
	if ix := c.Store.InfluxDB; ix.URL != "" {
		if u, err := url.Parse(ix.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.Errorf("store.influxdb.url", "%q is not an http(s) URL", ix.URL)
		}
		if ix.Bucket == "" {
			r.Errorf("store.influxdb.bucket", "is required with an InfluxDB URL (InfluxDB 1.8: \"db/autogen\")")
		}
	} else if c.DataDir == "" {
		r.Errorf("data_dir", "is required for the embedded store")
	}
	if c.Store.Lookback < 0 {
		r.Errorf("store.lookback", "must not be negative")
	}
}

// Check validates a config built or changed outside a file.
func (c *Config) Check() error {
	var r yamlconf.Report
	c.Validate(&r)
	return r.Err("flags", nil)
}
