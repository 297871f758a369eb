package mqttsrc

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestMappingNormalize(t *testing.T) {
	m := Mapping{Device: "id", Time: "time", Fields: []Field{{Path: "v", Metric: "v"}, {Path: "w", Metric: "w", Scale: 0.1}}}
	m.Normalize()
	if m.TimeFormat != TimeRFC3339 || m.TimeClock != "unknown" || m.Fields[0].Scale != 1 || m.Fields[1].Scale != 0.1 {
		t.Errorf("normalized = %+v", m)
	}
	m = Mapping{Device: "id", Fields: []Field{{Path: "v", Metric: "v"}}}
	m.Normalize()
	if m.TimeFormat != "" || m.TimeClock != "" {
		t.Errorf("arrival time got a format: %+v", m)
	}
}

func TestMappingCheck(t *testing.T) {
	good := func() Mapping {
		return Mapping{Device: "deviceInfo.devEui", Time: "time", Filter: map[string]string{"fPort": "2"},
			Fields: []Field{{Path: "object.x", Metric: "x", Unit: "°C", Range: []float64{-40, 85}}}}
	}
	tests := []struct {
		name string
		edit func(*Mapping)
		bad  map[string]string // field → part of the message
	}{
		{"good", func(*Mapping) {}, nil},
		{"topic device and constant", func(m *Mapping) { m.Device = "topic:3" }, nil},
		{"constant device", func(m *Mapping) { m.Device = "const:greenhouse-1" }, nil},
		{"whole payload", func(m *Mapping) { m.Fields[0].Path = "." }, nil},
		{"unix ms ntp", func(m *Mapping) { m.TimeFormat, m.TimeClock = TimeUnixMS, "ntp" }, nil},
		{"no device", func(m *Mapping) { m.Device = "" }, map[string]string{"device": "required"}},
		{"constant not a name", func(m *Mapping) { m.Device = "const:bad id" }, map[string]string{"device": "not allowed"}},
		{"topic level not a number", func(m *Mapping) { m.Device = "topic:x" }, map[string]string{"device": "topic:N"}},
		{"topic level negative", func(m *Mapping) { m.Device = "topic:-1" }, map[string]string{"device": "topic:N"}},
		{"empty segment", func(m *Mapping) { m.Device = "deviceInfo..devEui" }, map[string]string{"device": "empty segment"}},
		{"leading dot", func(m *Mapping) { m.Time = ".time" }, map[string]string{"time": "empty segment"}},
		{"path too deep", func(m *Mapping) { m.Fields[0].Path = strings.Repeat("a.", 40) + "a" }, map[string]string{"fields[0].path": "segments"}},
		{"path too long", func(m *Mapping) { m.Fields[0].Path = strings.Repeat("a", 300) }, map[string]string{"fields[0].path": "longer"}},
		{"path not UTF-8", func(m *Mapping) { m.Fields[0].Path = "a\xff" }, map[string]string{"fields[0].path": "UTF-8"}},
		{"bad time format", func(m *Mapping) { m.TimeFormat = "iso" }, map[string]string{"time_format": "rfc3339"}},
		{"bad time clock", func(m *Mapping) { m.TimeClock = "atomic" }, map[string]string{"time_clock": "ntp"}},
		{"format without time", func(m *Mapping) { m.Time, m.TimeFormat = "", TimeUnixS }, map[string]string{"time": "required"}},
		{"bad filter path", func(m *Mapping) { m.Filter = map[string]string{"a..b": "1"} }, map[string]string{"filter.a..b": "empty segment"}},
		{"no fields", func(m *Mapping) { m.Fields = nil }, map[string]string{"fields": "at least one"}},
		{"too many fields", func(m *Mapping) { m.Fields = make([]Field, MaxFields+1) }, map[string]string{"fields": "more than"}},
		{"no path", func(m *Mapping) { m.Fields[0].Path = "" }, map[string]string{"fields[0].path": "required"}},
		{"bad metric", func(m *Mapping) { m.Fields[0].Metric = "soil moisture" }, map[string]string{"fields[0].metric": "not allowed"}},
		{"duplicate metric", func(m *Mapping) { m.Fields = append(m.Fields, Field{Path: "y", Metric: "x", Scale: 1}) }, map[string]string{"fields[1].metric": "twice"}},
		{"unit too long", func(m *Mapping) { m.Fields[0].Unit = strings.Repeat("u", 17) }, map[string]string{"fields[0].unit": "longer"}},
		{"unit with a quote", func(m *Mapping) { m.Fields[0].Unit = `"` }, map[string]string{"fields[0].unit": "reserved"}},
		{"scale NaN", func(m *Mapping) { m.Fields[0].Scale = math.NaN() }, map[string]string{"fields[0].scale": "finite"}},
		{"offset infinite", func(m *Mapping) { m.Fields[0].Offset = math.Inf(1) }, map[string]string{"fields[0].offset": "finite"}},
		{"range reversed", func(m *Mapping) { m.Fields[0].Range = []float64{85, -40} }, map[string]string{"fields[0].range": "min < max"}},
		{"range of one", func(m *Mapping) { m.Fields[0].Range = []float64{1} }, map[string]string{"fields[0].range": "min < max"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := good()
			tt.edit(&m)
			m.Normalize()
			got := m.Check()
			if len(got) != len(tt.bad) {
				t.Fatalf("Check() = %v; want problems with %v", got, tt.bad)
			}
			for k, part := range tt.bad {
				if !strings.Contains(got[k], part) {
					t.Errorf("Check()[%q] = %q; want it to mention %q", k, got[k], part)
				}
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	good := func() Config {
		return Config{Brokers: []string{"tcp://127.0.0.1:1883"}, Topic: "application/+/device/+/event/up", QoS: 1,
			Mapping: Mapping{Device: "deviceInfo.devEui", Fields: []Field{{Path: "v", Metric: "v"}}}}
	}
	tests := []struct {
		name string
		edit func(*Config)
		bad  map[string]string
	}{
		{"good", func(*Config) {}, nil},
		{"persistent with id", func(c *Config) { c.PersistentSession, c.ClientID = true, "gw-1-soil" }, nil},
		{"websocket and multi-level", func(c *Config) { c.Brokers = []string{"wss://lns.example.com/mqtt"}; c.Topic = "sensors/#" }, nil},
		{"no broker", func(c *Config) { c.Brokers = nil }, map[string]string{"brokers": "at least one"}},
		{"bad scheme", func(c *Config) { c.Brokers = []string{"http://x:1883"} }, map[string]string{"brokers[0]": "scheme"}},
		{"no host", func(c *Config) { c.Brokers = []string{"tcp://"} }, map[string]string{"brokers[0]": "no host"}},
		{"not a URL", func(c *Config) { c.Brokers = []string{"tcp://[::1"} }, map[string]string{"brokers[0]": "not a URL"}},
		{"no topic", func(c *Config) { c.Topic = "" }, map[string]string{"topic": "required"}},
		{"# not last", func(c *Config) { c.Topic = "a/#/b" }, map[string]string{"topic": "last"}},
		{"partial wildcard", func(c *Config) { c.Topic = "a/b+/c" }, map[string]string{"topic": "whole level"}},
		{"qos 3", func(c *Config) { c.QoS = 3 }, map[string]string{"qos": "0, 1 or 2"}},
		{"persistent without id", func(c *Config) { c.PersistentSession = true }, map[string]string{"persistent_session": "client_id"}},
		{"keep-alive too short", func(c *Config) { c.KeepAlive = time.Millisecond }, map[string]string{"keep_alive": "1s"}},
		{"queue too big", func(c *Config) { c.Queue = MaxQueue + 1 }, map[string]string{"queue": "outside"}},
		{"mapping problems are placed", func(c *Config) { c.Mapping.Fields[0].Metric = "" }, map[string]string{"mapping.fields[0].metric": "empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.edit(&c)
			c.Normalize()
			got := c.Check()
			if len(got) != len(tt.bad) {
				t.Fatalf("Check() = %v; want problems with %v", got, tt.bad)
			}
			for k, part := range tt.bad {
				if !strings.Contains(got[k], part) {
					t.Errorf("Check()[%q] = %q; want it to mention %q", k, got[k], part)
				}
			}
			_, err := NewSource(c, nil)
			if (err != nil) != (len(tt.bad) > 0) {
				t.Errorf("NewSource error = %v; want one: %v", err, len(tt.bad) > 0)
			}
		})
	}
}
