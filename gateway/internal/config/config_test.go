package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
)

func TestGood(t *testing.T) {
	c, err := LoadFile("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.ID != "farm-north" || c.Gateway.Name != "北区农场 1 号站" || c.Gateway.SiteName != "北区" || c.Gateway.Location.Lat != 45.75 || c.Uplink.BatchSize != 200 {
		t.Errorf("decoded wrong: %+v", c)
	}
	devs := c.Buses[0].Devices
	if devs[0].Unit != 1 || devs[0].Interval != 30*time.Second {
		t.Errorf("soil-1 = %+v; want the profile's unit 1 and 30s", devs[0])
	}
	if devs[1].Unit != 2 || devs[1].Interval != DefaultInterval {
		t.Errorf("air-1 = %+v; want unit 2 and the default interval", devs[1])
	}
	if c.Buses[0].Timeout != 800*time.Millisecond || c.Buffer.MaxBytes != 512<<20 {
		t.Errorf("bus timeout %v, max bytes %v", c.Buses[0].Timeout, c.Buffer.MaxBytes)
	}
}

// TestShippedConfigsLoad keeps the example and demo configs valid.
func TestShippedConfigsLoad(t *testing.T) {
	for _, path := range []string{"../../../deploy/gateway.example.yaml", "../../../deploy/demo/gateway.yaml",
		"../../../deploy/demo/buoy.yaml", "../../../deploy/demo/pond.yaml"} {
		if _, err := LoadFile(path); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

func TestBad(t *testing.T) {
	tests := map[string][]string{
		"typo.bad.yaml":    {`testdata/typo.bad.yaml:14: buses[0].devices[0].intreval: unknown field (did you mean "interval"?)`},
		"profile.bad.yaml": {`testdata/profile.bad.yaml:13: buses[0].devices[0].profile: "renke/rs-ecth-n02" is not a known profile`},
		"values.bad.yaml": {
			`values.bad.yaml:2: gateway.id: gateway id "farm north": character ' ' at 4 is not allowed`,
			`values.bad.yaml:3: gateway.location: lat 95, lon 0 is not a position on Earth`,
			`values.bad.yaml:4: gateway.clock: "sundial" is not auto, ntp, gps, rtc or unsynced`,
			`values.bad.yaml:6: uplink.brokers[0]: "http://127.0.0.1:1883": scheme must be`,
			`values.bad.yaml:6: uplink.brokers[1]: "tcp://127.0.0.1" has no port`,
			`values.bad.yaml:7: uplink.batch_size: 0 is outside 1..10000`,
			`values.bad.yaml:8: uplink.codec: "zip" is not compact, rows+deflate or rows`,
			`values.bad.yaml:11: buffer.fsync: "sometimes" is not always, off or a duration between 10ms and 1m`,
			`values.bad.yaml:12: buffer.overflow: "drop_middle" is not drop_oldest or drop_newest`,
			`values.bad.yaml:13: buffer.keep_acked: -1h0m0s is not between 0s (keep nothing) and 8760h0m0s`,
			`values.bad.yaml:16: buses[0].type: "rs485" is not a bus type (tcp, rtu, rtu-over-tcp)`,
			`values.bad.yaml:21: buses[0].devices[0].interval: 10ms is shorter than 100ms`,
			`values.bad.yaml:22: buses[0].devices[1].id: "soil-1" is already used at buses[0].devices[0]`,
			`values.bad.yaml:24: buses[0].devices[1].unit: 300 is not a unit address 0..255`,
		},
		"hj212.bad.yaml": {
			`hj212.bad.yaml:14: hj212_uplinks[0].address: "10.1.2.3" is not host:port`,
			`hj212.bad.yaml:15: hj212_uplinks[0].mn: "MN-1" is not 1-24 letters or digits`,
			`hj212.bad.yaml:14: hj212_uplinks[0].pw: is required (or pw_file)`,
			`hj212.bad.yaml:16: hj212_uplinks[0].st: "3" is not a system code`,
			`hj212.bad.yaml:17: hj212_uplinks[0].edition: 2020 is not 2017 or 2025`,
			`hj212.bad.yaml:20: hj212_uplinks[1].pw: is not 1-6 letters or digits`,
			`hj212.bad.yaml:22: hj212_uplinks[1].factors.water_temperature: "W1010" is not a factor code`,
			`hj212.bad.yaml:22: hj212_uplinks[1].factors.bad metric: "bad metric" is not a metric or device/metric`,
			`hj212.bad.yaml:23: hj212_uplinks[1].minute_interval: 7m0s is not one of`,
			`hj212.bad.yaml:24: hj212_uplinks[1].ack_timeout: 1m40s is outside 1s..99s (OverTime)`,
			`hj212.bad.yaml:25: hj212_uplinks[1].retries: 100 is outside 0..99 (ReCount)`,
			`hj212.bad.yaml:26: hj212_uplinks[1].cou_flows.w01018: flow "W00000" is not a factor code`,
			`hj212.bad.yaml:26: hj212_uplinks[1].cou_flows.w01019: a factor cannot be its own flow`,
			`hj212.bad.yaml:27: hj212_uplinks[1].cou_max_gap: 2h0m0s is outside 1s..1h`,
			`hj212.bad.yaml:28: hj212_uplinks[2].name: "hj212-010000A8900016F000169DC0" is already the name of hj212_uplinks[1]`,
			`hj212.bad.yaml:31: hj212_uplinks[2].pw_file: give pw or pw_file, not both`,
		},
		"names.bad.yaml": {
			`names.bad.yaml:5: gateway.name: "北区\u202e农场": character U+202E at byte 6 is a control or format character`,
			`names.bad.yaml:6: gateway.site_name: "北北北北北北北北北北北北北北北北北北北北"… has 65 characters, more than 64`,
		},
		// Streams: the config's own fields are checked first; problems
		// with profiles are reported once those are fixed.
		"streams.bad.yaml": {
			`streams.bad.yaml:15: streams[0].id: "soil-1" is already used at buses[0].devices[0]`,
			`streams.bad.yaml:17: streams[0].port: /dev/ttyUSB0 is already owned by buses[0]; a line has one owner`,
			`streams.bad.yaml:20: streams[1].port: a stream has one of port, address, url and file; this one has address and port`,
			`streams.bad.yaml:25: streams[2].interval: is for feeds fetched from a url or file`,
			`streams.bad.yaml:29: streams[3].mooring.lat: must be between -90 and 90`,
			`streams.bad.yaml:32: streams[4].url: "ftp://example.com/x" is not an http or https URL`,
			`streams.bad.yaml:33: streams[5]: needs one of port (a serial device), address (host:port), url or file`,
			`streams.bad.yaml:38: streams[6].baud: line settings are for a stream on a serial port`,
			`streams.bad.yaml:42: mqtt_sources[0].brokers[0]: "http://10.0.0.9": scheme is not tcp`,
			`streams.bad.yaml:43: mqtt_sources[0].topic: "application/#/up": # must be the last level`,
			`streams.bad.yaml:44: mqtt_sources[0].qos: 3 is not 0, 1 or 2`,
			`streams.bad.yaml:45: mqtt_sources[0].mapping: the mapping belongs in a profile of kind mqtt`,
		},
		// Then the profiles: kind against transport, line settings.
		"streams-profile.bad.yaml": {
			`streams-profile.bad.yaml:9: streams[0].profile: "noaa/ndbc-stdmet-realtime2" is an NDBC feed: it needs a url or file`,
			`streams-profile.bad.yaml:12: streams[1].profile: "generic/met-buoy-gmx500-awac" is an NMEA 0183 instrument: it needs a port or an address`,
			`streams-profile.bad.yaml:18: streams[2].mooring: is for NMEA buoys that report a position; "priority/rdm6300" is rfid`,
			`streams-profile.bad.yaml:17: streams[2].parity: parity "mark" is not none, even or odd`,
			`streams-profile.bad.yaml:20: streams[3].profile: "chirpstack/soil-sensor" is an MQTT mapping: put it under mqtt_sources`,
			`streams-profile.bad.yaml:23: streams[4].profile: "renke/rs-ecth-n01" is a modbus profile: put the device on a bus`,
			`streams-profile.bad.yaml:26: streams[5].profile: "acme/ghost-reader" is not a known profile`,
			`streams-profile.bad.yaml:30: mqtt_sources[0].profile: "renke/rs-ecth-n01" is a modbus profile, not an MQTT mapping`,
		},
	}
	for file, wants := range tests {
		t.Run(file, func(t *testing.T) {
			_, err := LoadFile(filepath.Join("testdata", file))
			if err == nil {
				t.Fatal("loaded; want errors")
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(wants) {
				t.Errorf("%d errors, want %d:\n%v", n, len(wants), err)
			}
		})
	}
}

func TestProfilesDir(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "acme"), 0o755)
	data, err := os.ReadFile("../../../firmware-profiles/renke/rs-ws-n01-8.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "acme", "air.yaml"), []byte(strings.Replace(string(data), "model: renke/rs-ws-n01-8", "model: acme/air", 1)), 0o644)
	cfg := strings.Replace(mustRead(t, "testdata/profile.bad.yaml"), "renke/rs-ecth-n02", "acme/air", 1) +
		"profiles_dir: " + dir + "\n"
	if _, err := Load("x.yaml", []byte(cfg)); err != nil {
		t.Fatalf("profile from profiles_dir not found: %v", err)
	}
	// A broken profile in the directory is reported with its own file and line.
	os.WriteFile(filepath.Join(dir, "acme", "air.yaml"), []byte("model: acme/air\nname: x\nkind: modbus\nmodbus: {fields: [{metric: m, typo: 1}]}\n"), 0o644)
	_, err = Load("x.yaml", []byte(cfg))
	if err == nil || !strings.Contains(err.Error(), "acme/air.yaml:4: modbus.fields[0].typo: unknown field") {
		t.Fatalf("error %v", err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(mustReadF(f, "testdata/full.good.yaml")))
	f.Add([]byte(mustReadF(f, "testdata/values.bad.yaml")))
	f.Add([]byte(mustReadF(f, "testdata/streams.good.yaml")))
	f.Add([]byte(mustReadF(f, "testdata/streams-profile.bad.yaml")))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Load("f.yaml", data)
		if err != nil {
			return
		}
		if c.Gateway.ID == "" || len(c.Buses)+len(c.Streams)+len(c.MQTTSources) == 0 {
			t.Fatalf("accepted a config without id or devices")
		}
		for _, s := range c.Streams {
			if s.SilentAfter == nil || (s.Port != "" && s.Mode().Check() != nil) {
				t.Fatalf("accepted stream %+v without its defaults resolved", s)
			}
		}
		for _, m := range c.MQTTSources {
			if len(m.Mapping.Fields) == 0 {
				t.Fatalf("accepted MQTT source %+v without its profile's mapping", m)
			}
		}
	})
}

func mustReadF(f *testing.F, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return string(b)
}

func TestSerialBuses(t *testing.T) {
	base := `gateway: {id: gw}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
buffer: {dir: /tmp/x}
buses:
`
	tests := []struct {
		name, buses string
		want        []string
		check       func(t *testing.T, c *Config)
	}{
		{"baud from profiles", `  - {name: a, type: rtu, port: /dev/ttyUSB0, devices: [{id: s1, profile: renke/rs-ecth-n01}, {id: s2, profile: renke/rs-ws-n01-8, unit: 2}]}
`, nil, func(t *testing.T, c *Config) {
			b := c.Buses[0]
			if b.Baud != 4800 || b.Parity != "none" || *b.Retries != 1 || b.Timeout != 500*time.Millisecond ||
				b.Quarantine.After != 3 || b.Quarantine.Backoff != 10*time.Second {
				t.Fatalf("defaults: %+v", b)
			}
		}},
		{"explicit line", `  - {name: a, type: rtu, port: /dev/ttyUSB0, baud: 9600, parity: even, stop_bits: 1, retries: 0, turnaround: 20ms,
     quarantine: {after: 2, backoff: 5s, max_backoff: 1m}, devices: [{id: s1, profile: renke/rs-ecth-n01, max_gap: 4}]}
`, nil, func(t *testing.T, c *Config) {
			b := c.Buses[0]
			if b.Baud != 9600 || *b.Retries != 0 || *b.Devices[0].MaxGap != 4 || b.Mode().String() != "9600 8E1" {
				t.Fatalf("%+v", b)
			}
		}},
		{"dtu", `  - {name: a, type: rtu-over-tcp, address: "10.0.0.9:4001", baud: 9600, devices: [{id: s1, profile: renke/rs-ecth-n01}]}
`, nil, nil},
		{"two buses on one port", `  - {name: a, type: rtu, port: /dev/ttyUSB0, baud: 9600, devices: [{id: s1, profile: renke/rs-ecth-n01}]}
  - {name: b, type: rtu, port: /dev/ttyUSB0, baud: 9600, devices: [{id: s2, profile: renke/rs-ecth-n01}]}
`, []string{"x.yaml:6: buses[1].port: /dev/ttyUSB0 is already owned by buses[0]"}, nil},
		{"two units at one address", `  - {name: a, type: rtu, port: /dev/ttyUSB0, baud: 9600, devices: [{id: s1, profile: renke/rs-ecth-n01}, {id: s2, profile: renke/rs-ecth-n01}]}
`, []string{"buses[0].devices[1].unit: unit 1 is already s1 on this bus"}, nil},
		{"profiles disagree on baud", `  - {name: a, type: rtu, port: /dev/ttyUSB0, devices: [{id: s1, profile: renke/rs-ecth-n01}, {id: p, profile: acme/fast, unit: 3}]}
`, []string{"buses[0].baud: is required: the devices' profiles ship at different rates"}, nil},
		{"rtu without port", `  - {name: a, type: rtu, baud: 9600, devices: [{id: s1, profile: renke/rs-ecth-n01}]}
`, []string{"buses[0].port: an rtu bus needs a serial port"}, nil},
		{"bad line", `  - {name: a, type: rtu, port: /dev/ttyS1, baud: 9600, parity: mark, devices: [{id: s1, profile: renke/rs-ecth-n01}]}
`, []string{`buses[0].baud: parity "mark" is not none, even or odd`}, nil},
		{"rtu unit range", `  - {name: a, type: rtu, port: /dev/ttyS1, baud: 9600, devices: [{id: s1, profile: renke/rs-ecth-n01, unit: 250}]}
`, []string{"buses[0].devices[0].unit: 250 is not an RTU unit address 1..247"}, nil},
		{"serial settings on tcp", `  - {name: a, type: tcp, address: "h:502", baud: 9600, devices: [{id: s1, profile: renke/rs-ecth-n01}]}
`, []string{"buses[0].baud: a tcp bus has no serial settings"}, nil},
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "acme"), 0o755)
	fast := strings.Replace(mustRead(t, "../../../firmware-profiles/renke/rs-ws-n01-8.yaml"), "model: renke/rs-ws-n01-8", "model: acme/fast", 1)
	os.WriteFile(filepath.Join(dir, "acme", "fast.yaml"), []byte(strings.Replace(fast, "baud: 4800", "baud: 19200", 1)), 0o644)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load("x.yaml", []byte(base+tc.buses+"profiles_dir: "+dir+"\n"))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatal("loaded; want errors")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestStreamsGood(t *testing.T) {
	c, err := LoadFile("testdata/streams.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	buoy, gate, feed, desk := c.Streams[0], c.Streams[1], c.Streams[2], c.Streams[3]
	if buoy.Baud != 9600 || buoy.Parity != "none" || buoy.StopBits != 1 || *buoy.SilentAfter != 30*time.Second {
		t.Errorf("buoy = %+v; want baud 9600 from the config, parity, stop bits and silence from the profile", buoy)
	}
	if m := buoy.Mooring; m == nil || m.RadiusM != 150 || m.ReturnFraction != 0.9 || m.Confirm != 1 {
		t.Errorf("buoy mooring = %+v; want radius 150 and the defaults filled in", m)
	}
	if gate.Baud != 0 || gate.Address != "192.168.1.60:4001" || *gate.SilentAfter != 0 {
		t.Errorf("gate reader = %+v; a TCP stream has no line settings, a reader is never silent-failing", gate)
	}
	if feed.Interval != 30*time.Minute {
		t.Errorf("feed interval = %v", feed.Interval)
	}
	if desk.Baud != 9600 || *desk.SilentAfter != 0 {
		t.Errorf("desk reader = %+v; want the RDM6300's 9600 baud", desk)
	}
	src := c.MQTTSources[0]
	if src.QoS != 1 || src.KeepAlive != 30*time.Second || len(src.Mapping.Fields) == 0 || src.Mapping.Device != "deviceInfo.devEui" {
		t.Errorf("mqtt source = %+v; want qos 1, default keep-alive and the profile's mapping", src)
	}
	if got := buoy.Where(); got != "/dev/ttyUSB1 9600 baud" {
		t.Errorf("Where = %q", got)
	}
}

func TestBufferOptions(t *testing.T) {
	tests := []struct {
		fsync, overflow string
		wantFsync       string
		wantEvery       time.Duration
	}{
		{"always", "drop_oldest", buffer.FsyncAlways, 0},
		{"off", "drop_newest", buffer.FsyncOff, 0},
		{"250ms", "drop_oldest", buffer.FsyncInterval, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		o := (&Buffer{Dir: "/b", MaxBytes: 1 << 20, SegmentBytes: 1 << 16, Fsync: tt.fsync, Overflow: tt.overflow}).Options("gw-1")
		if o.Fsync != tt.wantFsync || o.SyncEvery != tt.wantEvery || o.Overflow != tt.overflow || o.GapDevice != "gw-1" {
			t.Errorf("%s/%s: options %+v", tt.fsync, tt.overflow, o)
		}
	}
}

// TestHJ212Uplinks: defaults (name from MN, edition 2017, the default
// factor table, OverTime 10 s and ReCount 3 from the standard's table 1,
// acknowledgements on) and explicit settings.
func TestHJ212Uplinks(t *testing.T) {
	c, err := LoadFile("testdata/hj212.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.HJ212Uplinks) != 2 {
		t.Fatalf("%d uplinks", len(c.HJ212Uplinks))
	}
	tests := []struct {
		name, wantName string
		edition        int
		factors        int
		ackTimeout     time.Duration
		retries        int
	}{
		{"defaults", "hj212-010000A8900016F000169DC0", 2017, len(DefaultHJ212Factors), 10 * time.Second, 3},
		{"explicit", "backup", 2025, 3, 5 * time.Second, 2},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := c.HJ212Uplinks[i]
			if h.Name != tt.wantName || h.Edition != tt.edition || len(h.Factors) != tt.factors || h.AckTimeout != tt.ackTimeout ||
				*h.Retries != tt.retries || !*h.Ack || !h.SendsRealtime() || h.ReconnectMax != time.Minute {
				t.Fatalf("%+v", h)
			}
		})
	}
	if got := c.HJ212Uplinks[1].Kinds(); len(got) != 4 || c.HJ212Uplinks[1].MinuteInterval != 5*time.Minute ||
		c.HJ212Uplinks[0].MinuteInterval != 10*time.Minute || len(c.HJ212Uplinks[0].Kinds()) != 1 ||
		c.HJ212Uplinks[1].Consumer(KindHour) != "backup.hour" {
		t.Fatalf("kinds %v, minute intervals %v", got, c.HJ212Uplinks[1].MinuteInterval)
	}
	if o := c.Buffer.Options("g"); o.RetainBytes != 64<<20 {
		t.Fatalf("retain %d", o.RetainBytes)
	}
	if c.HJ212Uplinks[0].CouMaxGap != 5*time.Minute || c.HJ212Uplinks[1].CouMaxGap != 2*time.Minute ||
		c.HJ212Uplinks[1].CouFlows["w01018"] != "w00000" {
		t.Fatalf("cou: %+v", c.HJ212Uplinks[1])
	}
	if c.HJ212Uplinks[1].Units["w01003"] != "NTU" || c.HJ212Uplinks[1].Factors["sonde-1/water_ph"] != "w01001" {
		t.Fatalf("%+v", c.HJ212Uplinks[1])
	}
}

// TestHJ212PasswordFile: pw_file is read at load; one that does not hold
// a valid PW is refused with its field.
func TestHJ212PasswordFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ content, wantPW, wantErr string }{
		{"123456\n", "123456", ""},
		{"1234567\n", "", "hj212_uplinks[0].pw_file: "},
	}
	for _, tt := range tests {
		pw := filepath.Join(dir, "pw")
		os.WriteFile(pw, []byte(tt.content), 0o600)
		cfg := "gateway: {id: g}\nuplink: {brokers: [\"tcp://127.0.0.1:1883\"]}\nbuffer: {dir: /tmp/x}\n" +
			"buses: [{name: b, type: tcp, address: \"127.0.0.1:502\", devices: [{id: d, profile: renke/rs-ecth-n01}]}]\n" +
			"hj212_uplinks:\n  - {address: \"127.0.0.1:6000\", mn: \"MN1\", st: \"21\", pw_file: " + pw + "}\n"
		c, err := Load("x.yaml", []byte(cfg))
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), "x.yaml:6: "+tt.wantErr)):
			t.Fatalf("%q: err %v, want %s", tt.content, err, tt.wantErr)
		case tt.wantErr == "" && err != nil:
			t.Fatal(err)
		case tt.wantErr == "" && c.HJ212Uplinks[0].PW != tt.wantPW:
			t.Fatalf("pw %q", c.HJ212Uplinks[0].PW)
		}
	}
}
