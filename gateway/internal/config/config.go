// Package config is the gateway's configuration file (gateway.yaml): its
// fields, defaults and validation. Unknown keys and bad values are errors
// that name the file, line and field; see docs/gateway-config.md.
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Config is the whole gateway.yaml.
type Config struct {
	Gateway Gateway `yaml:"gateway"`
	Uplink  Uplink  `yaml:"uplink"`
	Buffer  Buffer  `yaml:"buffer"`
	HTTP    HTTP    `yaml:"http"`
	// ProfilesDir adds or overrides device profiles (vendor/model.yaml files)
	// beside the ones built into the binary.
	ProfilesDir string `yaml:"profiles_dir"`
	Buses       []Bus  `yaml:"buses"`

	// Profiles is the profile set the devices were checked against.
	Profiles *profiles.Set `yaml:"-"`
	// File is the path the config was loaded from.
	File string `yaml:"-"`
}

// Gateway identifies this gateway.
type Gateway struct {
	ID       string              `yaml:"id"`   // unique per deployment; part of every topic
	Site     string              `yaml:"site"` // the site the gateway serves, e.g. north-farm
	Location *telemetry.Location `yaml:"location"`
	// Clock says how acquisition times are known: auto (ask the kernel
	// whether NTP has synchronised the clock), ntp, gps, rtc or unsynced.
	Clock string `yaml:"clock"`
}

// Uplink is the MQTT connection to the cloud.
type Uplink struct {
	Brokers  []string `yaml:"brokers"` // tcp://host:1883, tried in order
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	ClientID string   `yaml:"client_id"` // default fieldwatch-<gateway id>
	// Keepalive is the MQTT keepalive; a dead link is noticed within 1.5×.
	Keepalive time.Duration `yaml:"keepalive"`
	// BatchSize is the most readings in one batch.
	BatchSize int `yaml:"batch_size"`
	// BatchDelay is how long a reading may wait for others to fill a batch.
	BatchDelay time.Duration `yaml:"batch_delay"`
	// MaxInFlight is how many batches may await their ack at once.
	MaxInFlight int `yaml:"max_in_flight"`
	// AckTimeout is how long to wait for an ack before sending again.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// StateInterval is how often the retained state is refreshed.
	StateInterval time.Duration `yaml:"state_interval"`
	// Codec is the batch codec: rows or rows+deflate.
	Codec string `yaml:"codec"`
}

// Buffer is the on-disk store of readings awaiting acknowledgement.
type Buffer struct {
	Dir          string            `yaml:"dir"`
	MaxBytes     yamlconf.ByteSize `yaml:"max_bytes"`
	SegmentBytes yamlconf.ByteSize `yaml:"segment_bytes"`
	Fsync        string            `yaml:"fsync"` // always or off
}

// HTTP serves /metrics, /healthz and /status.
type HTTP struct {
	Listen string `yaml:"listen"` // host:port; empty disables
}

// Bus is one physical bus: a serial line or a TCP endpoint, owned by one
// scheduler that serialises every unit on it.
type Bus struct {
	Name    string        `yaml:"name"`
	Type    string        `yaml:"type"`    // tcp
	Address string        `yaml:"address"` // host:port for tcp
	Timeout time.Duration `yaml:"timeout"` // per request
	Devices []Device      `yaml:"devices"`
}

// Device is one device on a bus.
type Device struct {
	ID       string        `yaml:"id"`
	Profile  string        `yaml:"profile"` // vendor/model
	Unit     int           `yaml:"unit"`    // default: the profile's factory address
	Interval time.Duration `yaml:"interval"`
}

// Default returns a config with every default filled in.
func Default() *Config {
	return &Config{
		Gateway: Gateway{Clock: "auto"},
		Uplink: Uplink{
			Keepalive:     30 * time.Second,
			BatchSize:     500,
			BatchDelay:    time.Second,
			MaxInFlight:   4,
			AckTimeout:    30 * time.Second,
			StateInterval: time.Minute,
			Codec:         "rows+deflate",
		},
		Buffer: Buffer{
			Dir:          "/var/lib/fieldwatch/buffer",
			MaxBytes:     256 << 20,
			SegmentBytes: 4 << 20,
			Fsync:        "always",
		},
		HTTP: HTTP{Listen: "127.0.0.1:9101"},
	}
}

// DefaultInterval is a device's poll interval when none is given.
const DefaultInterval = time.Minute

// LoadFile reads and validates a config file.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	return Load(path, data)
}

// Load parses and validates a config; file names it in errors. Device
// profiles are looked up in the built-in set plus ProfilesDir.
func Load(file string, data []byte) (*Config, error) {
	c := Default()
	c.File = file
	if err := yamlconf.Decode(file, data, c); err != nil {
		return nil, err
	}
	set, err := profiles.WithDir(c.ProfilesDir)
	if err != nil {
		return nil, err
	}
	c.Profiles = set
	var r yamlconf.Report
	c.checkDevices(&r)
	if err := r.Err(file, data); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate implements yamlconf.Validator: everything that needs no profile.
func (c *Config) Validate(r *yamlconf.Report) {
	g := &c.Gateway
	if err := telemetry.CheckName("gateway", g.ID); err != nil {
		r.Errorf("gateway.id", "%v", err)
	}
	if g.Site != "" {
		if err := telemetry.CheckName("site", g.Site); err != nil {
			r.Errorf("gateway.site", "%v", err)
		}
	}
	if l := g.Location; l != nil && (l.Lat < -90 || l.Lat > 90 || l.Lon < -180 || l.Lon > 180) {
		r.Errorf("gateway.location", "lat %v, lon %v is not a position on Earth", l.Lat, l.Lon)
	}
	if _, err := ClockQuality(g.Clock); err != nil {
		r.Errorf("gateway.clock", "%v", err)
	}
	c.Uplink.validate(r)
	b := &c.Buffer
	if b.Dir == "" {
		r.Errorf("buffer.dir", "is required")
	}
	if b.SegmentBytes < 4<<10 {
		r.Errorf("buffer.segment_bytes", "%v is below 4KiB", b.SegmentBytes)
	}
	if b.MaxBytes < 2*b.SegmentBytes {
		r.Errorf("buffer.max_bytes", "%v must be at least two segments (%v)", b.MaxBytes, 2*b.SegmentBytes)
	}
	if b.Fsync != "always" && b.Fsync != "off" {
		r.Errorf("buffer.fsync", "%q is not always or off", b.Fsync)
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			r.Errorf("http.listen", "%q is not host:port", c.HTTP.Listen)
		}
	}
	if len(c.Buses) == 0 {
		r.Errorf("buses", "at least one bus is needed")
	}
	names := map[string]bool{}
	ids := map[string]string{}
	for i := range c.Buses {
		bus := &c.Buses[i]
		p := yamlconf.Join("buses", i)
		if err := telemetry.CheckName("bus", bus.Name); err != nil {
			r.Errorf(yamlconf.Join(p, "name"), "%v", err)
		} else if names[bus.Name] {
			r.Errorf(yamlconf.Join(p, "name"), "%q is used by another bus", bus.Name)
		}
		names[bus.Name] = true
		switch bus.Type {
		case "tcp":
			if _, port, err := net.SplitHostPort(bus.Address); err != nil || port == "" {
				r.Errorf(yamlconf.Join(p, "address"), "%q is not host:port", bus.Address)
			}
		default:
			r.Errorf(yamlconf.Join(p, "type"), "%q is not a bus type (tcp)", bus.Type)
		}
		if bus.Timeout == 0 {
			bus.Timeout = time.Second
		}
		if bus.Timeout < time.Millisecond || bus.Timeout > time.Minute {
			r.Errorf(yamlconf.Join(p, "timeout"), "%v is outside 1ms..1m", bus.Timeout)
		}
		if len(bus.Devices) == 0 {
			r.Errorf(yamlconf.Join(p, "devices"), "a bus needs at least one device")
		}
		for j := range bus.Devices {
			d := &bus.Devices[j]
			dp := yamlconf.Join(p, "devices", j)
			if err := telemetry.CheckName("device", d.ID); err != nil {
				r.Errorf(yamlconf.Join(dp, "id"), "%v", err)
			} else if other, dup := ids[d.ID]; dup {
				r.Errorf(yamlconf.Join(dp, "id"), "%q is already used at %s", d.ID, other)
			}
			ids[d.ID] = dp
			if d.Interval == 0 {
				d.Interval = DefaultInterval
			}
			if d.Interval < 100*time.Millisecond {
				r.Errorf(yamlconf.Join(dp, "interval"), "%v is shorter than 100ms", d.Interval)
			}
			if d.Unit < 0 || d.Unit > 255 {
				r.Errorf(yamlconf.Join(dp, "unit"), "%d is not a unit address 0..255", d.Unit)
			}
		}
	}
}

func (u *Uplink) validate(r *yamlconf.Report) {
	if len(u.Brokers) == 0 {
		r.Errorf("uplink.brokers", "at least one broker URL is needed, e.g. tcp://127.0.0.1:1883")
	}
	for i, b := range u.Brokers {
		p := fmt.Sprintf("uplink.brokers[%d]", i)
		v, err := url.Parse(b)
		if err != nil {
			r.Errorf(p, "%q is not a URL", b)
			continue
		}
		switch v.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			r.Errorf(p, "%q: scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss", b)
			continue
		}
		if v.Port() == "" {
			r.Errorf(p, "%q has no port", b)
		} else if n, err := strconv.Atoi(v.Port()); err != nil || n < 1 || n > 65535 {
			r.Errorf(p, "%q: port is not 1..65535", b)
		}
	}
	checkDur := func(field string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			r.Errorf("uplink."+field, "%v is outside %v..%v", d, lo, hi)
		}
	}
	checkDur("keepalive", u.Keepalive, 5*time.Second, time.Hour)
	checkDur("batch_delay", u.BatchDelay, 0, 10*time.Minute)
	checkDur("ack_timeout", u.AckTimeout, time.Second, time.Hour)
	checkDur("state_interval", u.StateInterval, time.Second, 24*time.Hour)
	if u.BatchSize < 1 || u.BatchSize > 10_000 {
		r.Errorf("uplink.batch_size", "%d is outside 1..10000", u.BatchSize)
	}
	if u.MaxInFlight < 1 || u.MaxInFlight > 64 {
		r.Errorf("uplink.max_in_flight", "%d is outside 1..64", u.MaxInFlight)
	}
	if _, err := CodecOf(u.Codec); err != nil {
		r.Errorf("uplink.codec", "%v", err)
	}
}

// checkDevices resolves each device's profile and default unit.
func (c *Config) checkDevices(r *yamlconf.Report) {
	for i := range c.Buses {
		for j := range c.Buses[i].Devices {
			d := &c.Buses[i].Devices[j]
			dp := yamlconf.Join("buses", i, "devices", j)
			p, ok := c.Profiles.Get(d.Profile)
			if !ok {
				r.Errorf(yamlconf.Join(dp, "profile"), "%q is not a known profile (known: %v)", d.Profile, c.Profiles.Models())
				continue
			}
			if p.Modbus == nil {
				r.Errorf(yamlconf.Join(dp, "profile"), "%q is not a Modbus profile", d.Profile)
				continue
			}
			if d.Unit == 0 {
				d.Unit = p.Modbus.Defaults.Unit
			}
		}
	}
}

// ClockQuality maps the gateway.clock setting; "auto" maps to
// ClockUnknown, meaning "ask the kernel".
func ClockQuality(s string) (telemetry.ClockQuality, error) {
	if s == "auto" {
		return telemetry.ClockUnknown, nil
	}
	q, err := telemetry.ParseClockQuality(s)
	if err != nil || q == telemetry.ClockUnknown {
		return 0, fmt.Errorf("%q is not auto, ntp, gps, rtc or unsynced", s)
	}
	return q, nil
}

// CodecOf maps the uplink.codec setting.
func CodecOf(s string) (telemetry.Codec, error) {
	switch s {
	case "rows":
		return telemetry.CodecRows, nil
	case "rows+deflate":
		return telemetry.CodecRowsDeflate, nil
	}
	return 0, fmt.Errorf("%q is not rows or rows+deflate", s)
}
