// Package config is the gateway's configuration file (gateway.yaml): its
// fields, defaults and validation. Unknown keys and bad values are errors
// that name the file, line and field; see docs/gateway-config.md.
package config

import (
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/internal/secretfile"
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
	// Streams are devices that talk in streams (NMEA, RFID/NFC) or feeds
	// fetched as documents (NDBC).
	Streams []Stream `yaml:"streams"`
	// MQTTSources are brokers whose messages become readings.
	MQTTSources []MQTTSource `yaml:"mqtt_sources"`
	// HJ212Uplinks are bureaus' platforms the gateway reports to in HJ 212,
	// beside the MQTT uplink and from the same buffer.
	HJ212Uplinks []HJ212Uplink `yaml:"hj212_uplinks"`
	// Fleet is remote configuration from the cloud (fleet.go); nil when
	// the file has no fleet section.
	Fleet *Fleet `yaml:"fleet"`
	// Updates is when a new gateway release may be swapped in
	// (updates.go); unlike fleet, a remote config may set it.
	Updates Updates `yaml:"updates"`

	// Profiles is the profile set the devices were checked against.
	Profiles *profiles.Set `yaml:"-"`
	// File is the path the config was loaded from.
	File string `yaml:"-"`
	// Loose are the secret files (uplink.password_file, the TLS key, or
	// this file when it holds a password) that other users can get at;
	// the gateway logs a warning for each.
	Loose []*secretfile.Loose `yaml:"-"`
}

// WarnLoose logs a warning for each secret file others can get at.
func (c *Config) WarnLoose(log *slog.Logger) {
	for _, l := range c.Loose {
		l.Warn(log)
	}
}

// Gateway identifies this gateway.
type Gateway struct {
	ID   string `yaml:"id"`   // unique per deployment; part of every topic
	Site string `yaml:"site"` // the site the gateway serves, e.g. north-farm
	// Name and SiteName are the station's and site's names as people say
	// them, in any language ("北区农场 1 号站"); the console shows them.
	Name     string              `yaml:"name"`
	SiteName string              `yaml:"site_name"`
	Location *telemetry.Location `yaml:"location"`
	// Labels group gateways for the inventory (and later rollouts):
	// county: laoshan, kind: buoy. At most 16; keys and values are ids.
	Labels map[string]string `yaml:"labels"`
	// Clock says how acquisition times are known: auto (ask the kernel
	// whether NTP has synchronised the clock), ntp, gps, rtc or unsynced.
	Clock string `yaml:"clock"`
}

// Uplink is the MQTT connection to the cloud.
type Uplink struct {
	Brokers []string `yaml:"brokers"` // tcp://host:1883 or ssl://host:8883, tried in order
	// Username is the MQTT user name; empty means the gateway id, which is
	// what the broker's ACL keys on.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// PasswordFile holds the password instead, so the secret can live
	// outside the config; it is read at load, a trailing newline dropped.
	PasswordFile string `yaml:"password_file"`
	ClientID     string `yaml:"client_id"` // default fieldwatch-<gateway id>
	// TLS secures ssl://, tls://, mqtts:// and wss:// brokers.
	TLS TLS `yaml:"tls"`
	// Keepalive is the MQTT keepalive; a dead link is noticed within 1.5×.
	Keepalive time.Duration `yaml:"keepalive"`
	// ConnectTimeout bounds one connection attempt to one broker.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ReconnectMax caps the jittered wait between connection attempts,
	// which doubles from 1s.
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// PublishTimeout replaces a connection whose publishes have not been
	// taken by the broker for this long (a stalled link that keepalives
	// have not yet noticed).
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// BacklogRate caps how many backlog items a second are sent behind
	// live data after an outage; 0 sends as fast as acks allow.
	BacklogRate int `yaml:"backlog_rate"`
	// ClockWait is how long after start readings stamped while the clock
	// was unsynced are held back, waiting for the time to be known so they
	// can be re-stamped; after it they are sent flagged unsynced. 0 sends
	// them at once.
	ClockWait time.Duration `yaml:"clock_wait"`
	// BatchSize is the most readings in one batch.
	BatchSize int `yaml:"batch_size"`
	// BacklogBatchSize is the most readings in one backlog batch: larger
	// than live ones, so a backlog drains at what the cloud can store
	// rather than at what one gateway's acks allow (docs/benchmarks.md).
	BacklogBatchSize int `yaml:"backlog_batch_size"`
	// BatchDelay is how long a reading may wait for others to fill a batch.
	BatchDelay time.Duration `yaml:"batch_delay"`
	// MaxInFlight is how many batches may await their ack at once.
	MaxInFlight int `yaml:"max_in_flight"`
	// AckTimeout is how long to wait for an ack before sending again.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// StateInterval is how often the retained state is refreshed.
	StateInterval time.Duration `yaml:"state_interval"`
	// Codec is the batch codec: compact (columnar and delta-encoded
	// against a context the cloud confirmed; the default, for cellular and
	// satellite links), rows+deflate or rows.
	Codec string `yaml:"codec"`
}

// DefaultKeepAcked is buffer.keep_acked's default: a day of acknowledged
// items, what a daily backup of the cloud needs (docs/decisions.md §38).
const DefaultKeepAcked = 24 * time.Hour

// MaxKeepAcked bounds buffer.keep_acked.
const MaxKeepAcked = 8760 * time.Hour

// Buffer is the on-disk store of readings awaiting acknowledgement.
type Buffer struct {
	Dir          string            `yaml:"dir"`
	MaxBytes     yamlconf.ByteSize `yaml:"max_bytes"`
	SegmentBytes yamlconf.ByteSize `yaml:"segment_bytes"`
	// Fsync is when appended items reach the disk: always (each poll's
	// items before the next; concurrent appends share one sync), off
	// (left to the OS), or a duration such as 1s (synced in the background
	// that often: a power cut loses at most that much).
	Fsync string `yaml:"fsync"`
	// Overflow is what happens at max_bytes: drop_oldest (the default) or
	// drop_newest. Either way the exact count and time span of what was
	// dropped is sent upstream as a gap event.
	Overflow string `yaml:"overflow"`
	// History keeps this many bytes of what every uplink has confirmed,
	// oldest deleted first, to answer HJ 212 platforms' history requests
	// (补传); 0 (the default) keeps none. At most half of max_bytes.
	History yamlconf.ByteSize `yaml:"history"`
	// KeepAcked keeps what the cloud has acknowledged on disk for this
	// long (24h by default, 0 for not at all), within max_bytes, which
	// wins: a cloud restored from a backup asks for it again
	// (docs/recovery.md).
	KeepAcked time.Duration `yaml:"keep_acked"`
}

// Options turns the section into the buffer's options; gateway names the
// gap events.
func (b *Buffer) Options(gateway string) buffer.Options {
	o := buffer.Options{Dir: b.Dir, MaxBytes: int64(b.MaxBytes), SegmentBytes: int64(b.SegmentBytes), Fsync: b.Fsync,
		Overflow: b.Overflow, GapDevice: gateway, RetainBytes: int64(b.History),
		KeepAcked: b.KeepAcked}
	if d, err := time.ParseDuration(b.Fsync); err == nil {
		o.Fsync, o.SyncEvery = buffer.FsyncInterval, d
	}
	return o
}

// HTTP serves /metrics, /healthz and /status.
type HTTP struct {
	Listen string `yaml:"listen"` // host:port; empty disables
}

// Bus is one physical bus: a serial line or a TCP endpoint, owned by one
// scheduler that serialises every unit on it.
type Bus struct {
	Name string `yaml:"name"`
	// Type is tcp (Modbus TCP), rtu (RS485/RS232 serial port) or
	// rtu-over-tcp (RTU frames through a serial device server, a DTU).
	Type    string `yaml:"type"`
	Address string `yaml:"address"` // host:port, for tcp and rtu-over-tcp
	Port    string `yaml:"port"`    // serial device for rtu, e.g. /dev/ttyUSB0 or /dev/serial/by-id/…
	// Line settings for rtu (and, for rtu-over-tcp, of the DTU's serial
	// side, which sets the gaps between frames). Baud defaults to the
	// devices' profiles' when they agree.
	Baud     int    `yaml:"baud"`
	DataBits int    `yaml:"data_bits"`
	Parity   string `yaml:"parity"`
	StopBits int    `yaml:"stop_bits"`
	// Timeout is how long to wait for a reply (per request).
	Timeout time.Duration `yaml:"timeout"`
	// Turnaround is the least silence after a frame before the next request
	// (beyond the 3.5 characters the standard asks for), for slow units.
	Turnaround time.Duration `yaml:"turnaround"`
	// Retries is how often a request is sent again after a timeout or a
	// garbled reply (default 1).
	Retries    *int       `yaml:"retries"`
	Quarantine Quarantine `yaml:"quarantine"`
	Devices    []Device   `yaml:"devices"`
}

// Quarantine leaves a silent unit alone so it cannot slow the others.
type Quarantine struct {
	After      int           `yaml:"after"`       // failed polls in a row (default 3)
	Backoff    time.Duration `yaml:"backoff"`     // first period (default 10s)
	MaxBackoff time.Duration `yaml:"max_backoff"` // the period doubles up to this (default 5m)
}

// Device is one device on a bus.
type Device struct {
	ID       string        `yaml:"id"`
	Profile  string        `yaml:"profile"` // vendor/model
	Unit     int           `yaml:"unit"`    // default: the profile's factory address
	Interval time.Duration `yaml:"interval"`
	// MaxGap overrides the profile's largest run of unused registers read
	// through to save a request.
	MaxGap *int `yaml:"max_gap"`
}

// Mode is the bus's serial framing.
func (b *Bus) Mode() serialport.Mode {
	return serialport.Mode{Baud: b.Baud, DataBits: b.DataBits, Parity: b.Parity, StopBits: b.StopBits}
}

// NewClient returns the Modbus client for the bus. It does not connect.
func (b *Bus) NewClient() modbus.Client {
	o := modbus.RTUOptions{Mode: b.Mode(), Timeout: b.Timeout, Turnaround: b.Turnaround}
	switch b.Type {
	case "rtu":
		return modbus.NewRTU(b.Port, o)
	case "rtu-over-tcp":
		return modbus.NewRTUOverTCP(b.Address, o)
	}
	return modbus.NewTCP(b.Address, b.Timeout)
}

// Default returns a config with every default filled in.
func Default() *Config {
	return &Config{
		Gateway: Gateway{Clock: "auto"},
		Uplink: Uplink{
			Keepalive:        30 * time.Second,
			ConnectTimeout:   10 * time.Second,
			ReconnectMax:     time.Minute,
			PublishTimeout:   30 * time.Second,
			ClockWait:        10 * time.Minute,
			BatchSize:        500,
			BacklogBatchSize: 5000,
			BatchDelay:       time.Second,
			MaxInFlight:      4,
			AckTimeout:       30 * time.Second,
			StateInterval:    time.Minute,
			Codec:            "compact",
		},
		Buffer: Buffer{
			Dir:          "/var/lib/fieldwatch/buffer",
			MaxBytes:     256 << 20,
			SegmentBytes: 4 << 20,
			Fsync:        "always",
			Overflow:     buffer.OverflowDropOldest,
			KeepAcked:    DefaultKeepAcked,
		},
		HTTP: HTTP{Listen: "127.0.0.1:9101"},
	}
}

// ReservedID cannot be a gateway id: its topics would fall under the
// cloud's alerts, fieldwatch/v1/alerts/….
const ReservedID = "alerts"

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

// noteLoose records a loose secret file named by field.
func (c *Config) noteLoose(field string, l *secretfile.Loose) {
	if l != nil {
		l.Field = field
		c.Loose = append(c.Loose, l)
	}
}

// holdsPassword reports whether the config file itself holds a password.
func (c *Config) holdsPassword() bool {
	if c.Uplink.Password != "" && c.Uplink.PasswordFile == "" {
		return true
	}
	for _, m := range c.MQTTSources {
		if m.Password != "" {
			return true
		}
	}
	for _, h := range c.HJ212Uplinks {
		if h.PW != "" && h.PWFile == "" {
			return true
		}
	}
	return false
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
	c.Uplink.load(&r, c.noteLoose)
	c.loadHJ212(&r)
	if c.holdsPassword() {
		if l, err := secretfile.Check(file); err == nil {
			c.noteLoose("config file (it holds a password)", l)
		}
	}
	c.checkDevices(&r)
	c.checkStreamProfiles(&r)
	if err := r.Err(file, data); err != nil {
		return nil, err
	}
	return c, nil
}

// validateLabels reports each bad label at its own line.
func validateLabels(r *yamlconf.Report, labels map[string]string) {
	if len(labels) > telemetry.MaxLabels {
		r.Errorf("gateway.labels", "%d labels, more than %d", len(labels), telemetry.MaxLabels)
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if err := telemetry.CheckName("label", k); err != nil {
			r.Errorf(yamlconf.Join("gateway.labels", k), "%v", err)
		} else if err := telemetry.CheckName("label "+k+" value", labels[k]); err != nil {
			r.Errorf(yamlconf.Join("gateway.labels", k), "%v", err)
		}
	}
}

// Validate implements yamlconf.Validator: everything that needs no profile.
func (c *Config) Validate(r *yamlconf.Report) {
	g := &c.Gateway
	if err := telemetry.CheckName("gateway", g.ID); err != nil {
		r.Errorf("gateway.id", "%v", err)
	} else if g.ID == ReservedID {
		r.Errorf("gateway.id", "%q is reserved: fieldwatch/v1/%s/ carries the cloud's alerts", g.ID, g.ID)
	}
	if g.Site != "" {
		if err := telemetry.CheckName("site", g.Site); err != nil {
			r.Errorf("gateway.site", "%v", err)
		}
	}
	if err := telemetry.CheckDisplayName(g.Name); err != nil {
		r.Errorf("gateway.name", "%v", err)
	}
	if err := telemetry.CheckDisplayName(g.SiteName); err != nil {
		r.Errorf("gateway.site_name", "%v", err)
	}
	validateLabels(r, g.Labels)
	if l := g.Location; l != nil && (l.Lat < -90 || l.Lat > 90 || l.Lon < -180 || l.Lon > 180) {
		r.Errorf("gateway.location", "lat %v, lon %v is not a position on Earth", l.Lat, l.Lon)
	}
	if _, err := ClockQuality(g.Clock); err != nil {
		r.Errorf("gateway.clock", "%v", err)
	}
	if c.Uplink.Username == "" {
		c.Uplink.Username = g.ID
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
	if b.Fsync != buffer.FsyncAlways && b.Fsync != buffer.FsyncOff {
		if d, err := time.ParseDuration(b.Fsync); err != nil || d < 10*time.Millisecond || d > time.Minute {
			r.Errorf("buffer.fsync", "%q is not always, off or a duration between 10ms and 1m", b.Fsync)
		}
	}
	if b.History < 0 || b.History > b.MaxBytes/2 {
		r.Errorf("buffer.history", "%v is more than half of max_bytes (%v)", b.History, b.MaxBytes)
	}
	if b.KeepAcked < 0 || b.KeepAcked > MaxKeepAcked {
		r.Errorf("buffer.keep_acked", "%v is not between 0s (keep nothing) and %v", b.KeepAcked, MaxKeepAcked)
	}
	if b.Overflow != buffer.OverflowDropOldest && b.Overflow != buffer.OverflowDropNewest {
		r.Errorf("buffer.overflow", "%q is not drop_oldest or drop_newest", b.Overflow)
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			r.Errorf("http.listen", "%q is not host:port", c.HTTP.Listen)
		}
	}
	if len(c.Buses) == 0 && len(c.Streams) == 0 && len(c.MQTTSources) == 0 {
		r.Errorf("buses", "at least one bus, stream or mqtt source is needed")
	}
	names := map[string]bool{}
	ids := map[string]string{}
	owners := map[string]string{} // port or endpoint → bus path
	for i := range c.Buses {
		bus := &c.Buses[i]
		p := yamlconf.Join("buses", i)
		if err := telemetry.CheckName("bus", bus.Name); err != nil {
			r.Errorf(yamlconf.Join(p, "name"), "%v", err)
		} else if names[bus.Name] {
			r.Errorf(yamlconf.Join(p, "name"), "%q is used by another bus", bus.Name)
		}
		names[bus.Name] = true
		bus.validate(r, p, owners)
		for j := range bus.Devices {
			d := &bus.Devices[j]
			dp := yamlconf.Join(p, "devices", j)
			checkID(r, dp, d.ID, ids)
			if d.Interval == 0 {
				d.Interval = DefaultInterval
			}
			if d.Interval < 100*time.Millisecond {
				r.Errorf(yamlconf.Join(dp, "interval"), "%v is shorter than 100ms", d.Interval)
			}
			if d.Unit < 0 || d.Unit > 255 {
				r.Errorf(yamlconf.Join(dp, "unit"), "%d is not a unit address 0..255", d.Unit)
			}
			if d.MaxGap != nil && (*d.MaxGap < 0 || *d.MaxGap > modbus.MaxReadRegisters) {
				r.Errorf(yamlconf.Join(dp, "max_gap"), "%d is outside 0..%d", *d.MaxGap, modbus.MaxReadRegisters)
			}
		}
	}
	c.validateStreams(r, ids, owners)
	c.validateHJ212(r)
	c.validateFleet(r)
	c.validateUpdates(r)
}

// validate checks a bus's own fields and fills their defaults. owners
// records which bus holds each port and endpoint: one owner per physical
// line is what keeps RS485 requests from colliding.
func (b *Bus) validate(r *yamlconf.Report, p string, owners map[string]string) {
	own := func(field, key, what string) { own(r, owners, yamlconf.Join(p, field), key, what, p) }
	switch b.Type {
	case "tcp", "rtu-over-tcp":
		if _, port, err := net.SplitHostPort(b.Address); err != nil || port == "" {
			r.Errorf(yamlconf.Join(p, "address"), "%q is not host:port", b.Address)
		} else {
			own("address", "tcp:"+b.Address, b.Address)
		}
		if b.Port != "" {
			r.Errorf(yamlconf.Join(p, "port"), "a %s bus has an address, not a serial port", b.Type)
		}
	case "rtu":
		if b.Port == "" {
			r.Errorf(yamlconf.Join(p, "port"), "an rtu bus needs a serial port, e.g. /dev/ttyUSB0 (see `fieldwatch-gateway ports`)")
		} else {
			key := filepath.Clean(b.Port)
			if real, err := filepath.EvalSymlinks(key); err == nil {
				key = real
			}
			own("port", "serial:"+key, b.Port)
		}
		if b.Address != "" {
			r.Errorf(yamlconf.Join(p, "address"), "an rtu bus has a serial port, not an address")
		}
	default:
		r.Errorf(yamlconf.Join(p, "type"), "%q is not a bus type (tcp, rtu, rtu-over-tcp)", b.Type)
	}
	if b.Type != "tcp" {
		if b.Parity == "" {
			b.Parity = "none"
		}
		if b.Baud != 0 { // 0 is resolved from the profiles later
			if err := b.Mode().Check(); err != nil {
				r.Errorf(yamlconf.Join(p, "baud"), "%v", err)
			}
		}
	} else if b.Baud != 0 || b.Parity != "" || b.StopBits != 0 || b.DataBits != 0 {
		r.Errorf(yamlconf.Join(p, "baud"), "a tcp bus has no serial settings")
	}
	if b.Timeout == 0 {
		b.Timeout = time.Second
		if b.Type == "rtu" {
			b.Timeout = 500 * time.Millisecond
		}
	}
	if b.Timeout < time.Millisecond || b.Timeout > time.Minute {
		r.Errorf(yamlconf.Join(p, "timeout"), "%v is outside 1ms..1m", b.Timeout)
	}
	if b.Turnaround < 0 || b.Turnaround > 5*time.Second {
		r.Errorf(yamlconf.Join(p, "turnaround"), "%v is outside 0..5s", b.Turnaround)
	}
	if b.Retries == nil {
		one := 1
		b.Retries = &one
	} else if *b.Retries < 0 || *b.Retries > 5 {
		r.Errorf(yamlconf.Join(p, "retries"), "%d is outside 0..5", *b.Retries)
	}
	q := &b.Quarantine
	if q.After == 0 {
		q.After = 3
	}
	if q.Backoff == 0 {
		q.Backoff = 10 * time.Second
	}
	if q.MaxBackoff == 0 {
		q.MaxBackoff = max(5*time.Minute, q.Backoff)
	}
	if q.After < 1 || q.After > 100 {
		r.Errorf(yamlconf.Join(p, "quarantine.after"), "%d is outside 1..100", q.After)
	}
	if q.Backoff < 100*time.Millisecond || q.MaxBackoff < q.Backoff {
		r.Errorf(yamlconf.Join(p, "quarantine.backoff"), "%v must be at least 100ms and at most max_backoff %v", q.Backoff, q.MaxBackoff)
	}
	if len(b.Devices) == 0 {
		r.Errorf(yamlconf.Join(p, "devices"), "a bus needs at least one device")
	}
}

func (u *Uplink) validate(r *yamlconf.Report) {
	if len(u.Brokers) == 0 {
		r.Errorf("uplink.brokers", "at least one broker URL is needed, e.g. tcp://127.0.0.1:1883")
	}
	var plain []string // brokers without TLS
	for i, b := range u.Brokers {
		p := fmt.Sprintf("uplink.brokers[%d]", i)
		v, err := url.Parse(b)
		if err != nil {
			r.Errorf(p, "%q is not a URL", b)
			continue
		}
		switch v.Scheme {
		case "tcp", "mqtt", "ws":
			plain = append(plain, b)
		case "ssl", "tls", "mqtts", "wss":
		default:
			r.Errorf(p, "%q: scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss", b)
			continue
		}
		if v.User != nil {
			r.Errorf(p, "%q carries credentials; put them in uplink.username and uplink.password_file, where they stay out of logs and status", v.Redacted())
		}
		if v.Port() == "" {
			r.Errorf(p, "%q has no port", b)
		} else if n, err := strconv.Atoi(v.Port()); err != nil || n < 1 || n > 65535 {
			r.Errorf(p, "%q: port is not 1..65535", b)
		}
	}
	if u.Password != "" && u.PasswordFile != "" {
		r.Errorf("uplink.password_file", "give password or password_file, not both")
	}
	u.TLS.validate(r, "uplink.tls", plain)
	checkDur := func(field string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			r.Errorf("uplink."+field, "%v is outside %v..%v", d, lo, hi)
		}
	}
	checkDur("keepalive", u.Keepalive, 5*time.Second, time.Hour)
	checkDur("connect_timeout", u.ConnectTimeout, time.Second, 5*time.Minute)
	checkDur("reconnect_max", u.ReconnectMax, time.Second, time.Hour)
	checkDur("publish_timeout", u.PublishTimeout, time.Second, time.Hour)
	checkDur("clock_wait", u.ClockWait, 0, 24*time.Hour)
	if u.BacklogRate < 0 || u.BacklogRate > 10_000_000 {
		r.Errorf("uplink.backlog_rate", "%d is outside 0 (no limit)..10000000 items/s", u.BacklogRate)
	}
	checkDur("batch_delay", u.BatchDelay, 0, 10*time.Minute)
	checkDur("ack_timeout", u.AckTimeout, time.Second, time.Hour)
	checkDur("state_interval", u.StateInterval, time.Second, 24*time.Hour)
	if u.BatchSize < 1 || u.BatchSize > 10_000 {
		r.Errorf("uplink.batch_size", "%d is outside 1..10000", u.BatchSize)
	}
	if u.BacklogBatchSize < 1 || u.BacklogBatchSize > 10_000 {
		r.Errorf("uplink.backlog_batch_size", "%d is outside 1..10000", u.BacklogBatchSize)
	}
	if u.MaxInFlight < 1 || u.MaxInFlight > 64 {
		r.Errorf("uplink.max_in_flight", "%d is outside 1..64", u.MaxInFlight)
	}
	if _, err := CodecOf(u.Codec); err != nil {
		r.Errorf("uplink.codec", "%v", err)
	}
}

// checkDevices resolves each device's profile, its default unit, and a
// serial bus's baud rate when the config leaves it to the profiles.
func (c *Config) checkDevices(r *yamlconf.Report) {
	for i := range c.Buses {
		bus := &c.Buses[i]
		bauds := map[int][]string{}
		units := map[int]string{}
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
			if bus.Type != "tcp" && bus.Baud == 0 && p.Modbus.Defaults.Baud != 0 {
				bauds[p.Modbus.Defaults.Baud] = append(bauds[p.Modbus.Defaults.Baud], d.Profile)
			}
			if bus.Type == "rtu" && (d.Unit < 1 || d.Unit > 247) {
				r.Errorf(yamlconf.Join(dp, "unit"), "%d is not an RTU unit address 1..247", d.Unit)
			}
			if other, dup := units[d.Unit]; dup {
				r.Errorf(yamlconf.Join(dp, "unit"), "unit %d is already %s on this bus; two units cannot share an address", d.Unit, other)
			}
			units[d.Unit] = d.ID
		}
		if bus.Type == "tcp" || bus.Baud != 0 {
			continue
		}
		switch len(bauds) {
		case 0:
			r.Errorf(yamlconf.Join("buses", i, "baud"), "is required: the profiles do not say")
		case 1:
			for b := range bauds {
				bus.Baud = b
			}
		default:
			r.Errorf(yamlconf.Join("buses", i, "baud"), "is required: the devices' profiles ship at different rates %v; every unit on a line must use one", bauds)
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
	if err != nil || q == telemetry.ClockUnknown || q == telemetry.ClockRestamped {
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
	case "compact":
		return telemetry.CodecCompact, nil
	}
	return 0, fmt.Errorf("%q is not compact, rows+deflate or rows", s)
}
