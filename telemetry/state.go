package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// State is what a gateway announces, retained, on its state topic: online
// with its description when it connects and periodically, offline as its
// last will or when it stops.
type State struct {
	State   string `json:"state"` // StateOnline or StateOffline
	Version string `json:"version,omitempty"`
	Site    string `json:"site,omitempty"`
	// Name and SiteName are what people call the station and its site
	// ("北区农场 1 号站"), in any language: shown, never used as keys.
	Name     string    `json:"name,omitempty"`
	SiteName string    `json:"site_name,omitempty"`
	Location *Location `json:"location,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Time     time.Time `json:"time,omitzero"` // when this state was published
	Buffered uint64    `json:"buffered"`      // readings waiting for an ack
	// Heartbeat is how often the gateway publishes its state while it is
	// connected (its state_interval); it also publishes at once when a
	// device's health changes. A gateway heard from neither by state nor
	// by data for a few heartbeats is not responding, whatever its MQTT
	// session says. Zero: an older gateway that does not say.
	Heartbeat Duration      `json:"heartbeat,omitempty"`
	Devices   []DeviceState `json:"devices,omitempty"`
	// Accepts lists the optional ack fields the gateway understands
	// (AckRetry, AckOnline): the cloud sends a gateway nothing it does not
	// list, since an older gateway refuses an ack with an unknown field.
	// Names the cloud does not know are ignored.
	Accepts []string `json:"accepts,omitempty"`
	// Config is the configuration the gateway runs, its last remote
	// configuration error and rollback (since issue 17). DecodeState
	// ignores fields it does not know, so an older cloud reads a newer
	// gateway's state; an older gateway leaves it out.
	Config *ConfigState `json:"config,omitempty"`
	// Update is the gateway's binary updates: the release pending, the
	// last error and rollback (absent from older gateways).
	Update *UpdateState `json:"update,omitempty"`

	// What the inventory shows (since issue 17's inventory slice; all
	// optional, absent from older gateways, ignored by older clouds).
	// Arch is the build's architecture: GOARCH, with the ARM version for
	// arm ("armv7"), e.g. arm64, amd64, mipsle.
	Arch string `json:"arch,omitempty"`
	// Uptime is how long the gateway process has run, on its monotonic
	// clock (so a wall clock set meanwhile does not change it), to the
	// second.
	Uptime Duration `json:"uptime,omitempty"`
	// BufferBytes is what its buffer holds on disk, BufferMaxBytes the
	// buffer's budget (buffer.max_bytes).
	BufferBytes    int64 `json:"buffer_bytes,omitempty"`
	BufferMaxBytes int64 `json:"buffer_max_bytes,omitempty"`
	// Clock is how the gateway knows the time now.
	Clock *ClockState `json:"clock,omitempty"`
	// Labels are the gateway's labels (gateway.labels: county, kind, …),
	// for filtering and grouping: keys and values are ids.
	Labels map[string]string `json:"labels,omitempty"`
}

// ClockState is the gateway's clock as it knows it: its quality (ntp, gps,
// rtc, unsynced), and, when the kernel is disciplined by an NTP daemon,
// the offset still being corrected and the estimated error, in seconds.
type ClockState struct {
	Quality string `json:"quality"`
	// OffsetS is the kernel's remaining offset (adjtimex), present only
	// while synced; MaxErrorS the kernel's maximum error.
	OffsetS   *float64 `json:"offset_s,omitempty"`
	MaxErrorS *float64 `json:"max_error_s,omitempty"`
}

// Bounds of the inventory's fields in a state.
const (
	MaxLabels = 16
	// MaxClockSeconds bounds a clock offset or error: about 30 years.
	MaxClockSeconds = 1e9
)

// CheckLabels checks a gateway's labels: at most MaxLabels, each key and
// value an id (as CheckName: 1–64 of A–Z a–z 0–9 _ . -, so a label can be
// written in a query as key:value and used as a group's key).
func CheckLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return fmt.Errorf("%d labels, more than %d", len(labels), MaxLabels)
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if err := CheckName("label", k); err != nil {
			return err
		}
		if err := CheckName("label "+k+" value", labels[k]); err != nil {
			return err
		}
	}
	return nil
}

func (c *ClockState) check() error {
	if q, err := ParseClockQuality(c.Quality); err != nil || q == ClockUnknown || q == ClockRestamped {
		return fmt.Errorf("clock: quality %q is not ntp, gps, rtc or unsynced", c.Quality)
	}
	for _, v := range []*float64{c.OffsetS, c.MaxErrorS} {
		if v != nil && !(*v >= -MaxClockSeconds && *v <= MaxClockSeconds) {
			return fmt.Errorf("clock: %v s is not an offset or error of at most %v s", *v, MaxClockSeconds)
		}
	}
	if c.MaxErrorS != nil && *c.MaxErrorS < 0 {
		return fmt.Errorf("clock: max_error_s %v is negative", *c.MaxErrorS)
	}
	return nil
}

// MaxAccepts bounds a state's Accepts.
const MaxAccepts = 16

// Accepting reports whether s lists the optional ack field name.
func (s State) Accepting(name string) bool { return slices.Contains(s.Accepts, name) }

// States of a gateway.
const (
	StateOnline  = "online"
	StateOffline = "offline"
)

// Location is a WGS84 position.
type Location struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// DeviceState describes a device a gateway polls, so the cloud knows about
// devices that have not reported yet and how often they should.
type DeviceState struct {
	ID       string   `json:"id"`
	Profile  string   `json:"profile"`
	Interval Duration `json:"interval"`
	Health   string   `json:"health,omitempty"` // ok, failing, unknown
	Error    string   `json:"error,omitempty"`  // last error while failing
	// Quiet marks a device that talks only when something happens (an
	// RFID reader without tags): its silence is not lateness, and its
	// health is the gateway's word.
	Quiet bool `json:"quiet,omitempty"`
	// Bus names the line the device shares with others (a Modbus bus of
	// the gateway's config); Port is that line's physical port or
	// endpoint (/dev/ttyUSB0, 10.0.0.5:502). Devices on one bus fail
	// together when its cable, adapter or serial server fails, so the cloud
	// raises one alert for the bus, not one per device. Empty for a device
	// that owns its line (a stream device) or is reached through a source.
	Bus  string `json:"bus,omitempty"`
	Port string `json:"port,omitempty"`
	// LastRead is when the gateway last acquired a reading or event from
	// the device, delivered to the cloud or not: what exists at the edge.
	// The cloud judges a device silent on it, not only on what arrived, so
	// a backlog still held by the gateway or a cloud that was itself
	// stalled is not taken for a silent device.
	LastRead time.Time `json:"last_read,omitzero"`
	// Mooring is where a moored buoy is anchored and how far it may swing
	// (the gateway's streams[].mooring), so the cloud can draw its watch
	// circle before any drift event. Absent for other devices and from
	// gateways older than issue 13's second map slice.
	Mooring *Mooring `json:"mooring,omitempty"`
}

// Mooring is a buoy's anchor (WGS84) and watch-circle radius.
type Mooring struct {
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	RadiusM float64 `json:"radius_m"`
}

// Duration is a time.Duration that travels as a string such as "5s".
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// MaxStateBytes bounds an encoded state.
const MaxStateBytes = 64 << 10

// EncodeState encodes s as JSON.
func EncodeState(s State) ([]byte, error) { return json.Marshal(s) }

// DecodeState parses and checks a state message.
func DecodeState(data []byte) (State, error) {
	var s State
	if len(data) > MaxStateBytes {
		return s, fmt.Errorf("state is %d bytes, more than %d", len(data), MaxStateBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("state: %w", err)
	}
	if s.State != StateOnline && s.State != StateOffline {
		return s, fmt.Errorf("state: %q is neither online nor offline", s.State)
	}
	if s.Site != "" {
		if err := CheckName("site", s.Site); err != nil {
			return s, fmt.Errorf("state: %w", err)
		}
	}
	if err := CheckDisplayName(s.Name); err != nil {
		return s, fmt.Errorf("state: name: %w", err)
	}
	if err := CheckDisplayName(s.SiteName); err != nil {
		return s, fmt.Errorf("state: site_name: %w", err)
	}
	if l := s.Location; l != nil && (l.Lat < -90 || l.Lat > 90 || l.Lon < -180 || l.Lon > 180) {
		return s, fmt.Errorf("state: location %v,%v is not on Earth", l.Lat, l.Lon)
	}
	if s.Heartbeat < 0 {
		return s, fmt.Errorf("state: heartbeat %v is negative", time.Duration(s.Heartbeat))
	}
	if len(s.Accepts) > MaxAccepts {
		return s, fmt.Errorf("state: accepts lists %d fields, more than %d", len(s.Accepts), MaxAccepts)
	}
	for _, a := range s.Accepts {
		if err := CheckName("accepts", a); err != nil {
			return s, fmt.Errorf("state: %w", err)
		}
	}
	if s.Config != nil {
		if err := s.Config.check(); err != nil {
			return s, fmt.Errorf("state: %w", err)
		}
	}
	if s.Update != nil {
		if err := s.Update.check(); err != nil {
			return s, fmt.Errorf("state: %w", err)
		}
	}
	if err := s.checkInventory(); err != nil {
		return s, fmt.Errorf("state: %w", err)
	}
	for i, d := range s.Devices {
		if err := CheckName("device", d.ID); err != nil {
			return s, fmt.Errorf("state: device %d: %w", i, err)
		}
		if d.Bus != "" {
			if err := CheckName("bus", d.Bus); err != nil {
				return s, fmt.Errorf("state: device %s: %w", d.ID, err)
			}
		}
		if len(d.Port) > MaxAttrLen {
			return s, fmt.Errorf("state: device %s: port is longer than %d bytes", d.ID, MaxAttrLen)
		}
		if m := d.Mooring; m != nil && !(m.Lat >= -90 && m.Lat <= 90 && m.Lon >= -180 && m.Lon <= 180 && m.RadiusM > 0 && m.RadiusM <= 100000) {
			return s, fmt.Errorf("state: device %s: mooring %v,%v radius %v m is not a mooring on Earth (radius 0..100000 m)",
				d.ID, m.Lat, m.Lon, m.RadiusM)
		}
	}
	return s, nil
}

// checkInventory checks the fields the inventory shows.
func (s *State) checkInventory() error {
	if s.Arch != "" {
		if err := CheckName("arch", s.Arch); err != nil {
			return err
		}
	}
	if s.Uptime < 0 {
		return fmt.Errorf("uptime %v is negative", time.Duration(s.Uptime))
	}
	if s.BufferBytes < 0 || s.BufferMaxBytes < 0 {
		return fmt.Errorf("buffer bytes %d of %d: negative", s.BufferBytes, s.BufferMaxBytes)
	}
	if s.Clock != nil {
		if err := s.Clock.check(); err != nil {
			return err
		}
	}
	if err := CheckLabels(s.Labels); err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	return nil
}

// MaxDisplayNameRunes bounds a display name: a station's or site's name as
// people say it.
const MaxDisplayNameRunes = 64

// CheckDisplayName checks a display name: valid UTF-8, at most
// MaxDisplayNameRunes characters, no control or format characters (a
// right-to-left override would make a page lie about what it names), and
// not only spaces. Empty is allowed: no name.
func CheckDisplayName(s string) error {
	if s == "" {
		return nil
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", s)
	}
	if n := utf8.RuneCountInString(s); n > MaxDisplayNameRunes {
		return fmt.Errorf("%.20q… has %d characters, more than %d", s, n, MaxDisplayNameRunes)
	}
	for i, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%q: character %U at byte %d is a control or format character", s, r, i)
		}
	}
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%q is only spaces", s)
	}
	return nil
}
