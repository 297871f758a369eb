package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/mqttsrc"
	"github.com/fieldwatch/fieldwatch/drivers/nmea"
	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Stream is a device that talks in a byte stream (an NMEA instrument, an
// RFID/NFC reader) on a serial port or a TCP connection, or a feed fetched
// as a document (an NDBC realtime2 file or URL). Exactly one of Port,
// Address, URL and File says where.
type Stream struct {
	ID      string `yaml:"id"`
	Profile string `yaml:"profile"` // vendor/model of kind nmea, rfid or ndbc
	Port    string `yaml:"port"`    // serial device, e.g. /dev/ttyUSB1
	Address string `yaml:"address"` // host:port of an NMEA multiplexer or serial device server
	URL     string `yaml:"url"`     // http(s) URL of an NDBC realtime2 file
	File    string `yaml:"file"`    // local copy of an NDBC realtime2 file
	// Line settings for Port; each defaults to the profile's.
	Baud     int    `yaml:"baud"`
	DataBits int    `yaml:"data_bits"`
	Parity   string `yaml:"parity"`
	StopBits int    `yaml:"stop_bits"`
	// Interval is how often a URL or File is fetched (default 10m; NDBC
	// updates hourly).
	Interval time.Duration `yaml:"interval"`
	// SilentAfter marks the device failing when it has sent nothing for
	// this long; defaults to the profile's, 0 disables.
	SilentAfter *time.Duration `yaml:"silent_after"`
	// Mooring watches an NMEA buoy's position: leaving the circle raises a
	// drift event.
	Mooring *nmea.Mooring `yaml:"mooring"`
}

// DefaultFetchInterval is how often a document feed is fetched when the
// config does not say.
const DefaultFetchInterval = 10 * time.Minute

// Mode is the stream's serial framing.
func (s *Stream) Mode() serialport.Mode {
	return serialport.Mode{Baud: s.Baud, DataBits: s.DataBits, Parity: s.Parity, StopBits: s.StopBits}
}

// MQTTSource subscribes to a broker (a LoRaWAN network server's, a Wi-Fi
// sensor's) and maps the JSON payloads to readings through a profile of
// kind mqtt. The device of each reading comes from the payload or topic,
// as the profile says; ID names the source itself in status and metrics.
type MQTTSource struct {
	ID             string `yaml:"id"`
	Profile        string `yaml:"profile"`
	mqttsrc.Config `yaml:",inline"`
}

// validateStreams checks the streams' and MQTT sources' own fields and fills
// their defaults. ids and owners are shared with the buses: a device id is
// unique across the gateway, and a serial port or endpoint has one owner.
func (c *Config) validateStreams(r *yamlconf.Report, ids, owners map[string]string) {
	for i := range c.Streams {
		s := &c.Streams[i]
		p := yamlconf.Join("streams", i)
		checkID(r, p, s.ID, ids)
		var where []string
		for field, v := range map[string]string{"port": s.Port, "address": s.Address, "url": s.URL, "file": s.File} {
			if v != "" {
				where = append(where, field)
			}
		}
		sort.Strings(where)
		switch len(where) {
		case 0:
			r.Errorf(p, "needs one of port (a serial device), address (host:port), url or file")
		case 1:
		default:
			r.Errorf(yamlconf.Join(p, where[1]), "a stream has one of port, address, url and file; this one has %s", strings.Join(where, " and "))
		}
		switch {
		case s.Port != "":
			key := filepath.Clean(s.Port)
			if real, err := filepath.EvalSymlinks(key); err == nil {
				key = real
			}
			own(r, owners, yamlconf.Join(p, "port"), "serial:"+key, s.Port, p)
		case s.Address != "":
			if _, port, err := net.SplitHostPort(s.Address); err != nil || port == "" {
				r.Errorf(yamlconf.Join(p, "address"), "%q is not host:port", s.Address)
			} else {
				own(r, owners, yamlconf.Join(p, "address"), "tcp:"+s.Address, s.Address, p)
			}
		case s.URL != "":
			if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				r.Errorf(yamlconf.Join(p, "url"), "%q is not an http or https URL", s.URL)
			}
		}
		if s.Port == "" && (s.Baud != 0 || s.DataBits != 0 || s.Parity != "" || s.StopBits != 0) {
			r.Errorf(yamlconf.Join(p, "baud"), "line settings are for a stream on a serial port")
		}
		if s.URL != "" || s.File != "" {
			if s.Interval == 0 {
				s.Interval = DefaultFetchInterval
			}
			if s.Interval < time.Second || s.Interval > 24*time.Hour {
				r.Errorf(yamlconf.Join(p, "interval"), "%v is outside 1s..24h", s.Interval)
			}
		} else if s.Interval != 0 {
			r.Errorf(yamlconf.Join(p, "interval"), "is for feeds fetched from a url or file; a port or address is read as it talks")
		}
		if s.SilentAfter != nil && (*s.SilentAfter < 0 || (*s.SilentAfter > 0 && *s.SilentAfter < time.Second)) {
			r.Errorf(yamlconf.Join(p, "silent_after"), "%v is neither 0 (never) nor at least 1s", *s.SilentAfter)
		}
		if m := s.Mooring; m != nil {
			m.Normalize()
			bad := m.Check()
			for _, k := range sortedKeys(bad) {
				r.Errorf(yamlconf.Join(p, "mooring", k), "%s", bad[k])
			}
		}
	}
	for i := range c.MQTTSources {
		m := &c.MQTTSources[i]
		p := yamlconf.Join("mqtt_sources", i)
		checkID(r, p, m.ID, ids)
		if m.Mapping.Device != "" || m.Mapping.Time != "" || len(m.Mapping.Fields) > 0 || len(m.Mapping.Filter) > 0 {
			r.Errorf(yamlconf.Join(p, "mapping"), "the mapping belongs in a profile of kind mqtt (see profiles_dir); name it in profile")
		}
		m.Config.Normalize()
		bad := m.Config.Check()
		for _, k := range sortedKeys(bad) {
			if !strings.HasPrefix(k, "mapping") { // the profile's, checked when it was loaded
				r.Errorf(yamlconf.Join(p, k), "%s", bad[k])
			}
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// modeField names the line setting that makes m wrong.
func modeField(m serialport.Mode) string {
	switch {
	case m.Parity != "" && m.Parity != "none" && m.Parity != "even" && m.Parity != "odd":
		return "parity"
	case m.DataBits != 0 && m.DataBits != 7 && m.DataBits != 8:
		return "data_bits"
	case m.StopBits != 0 && m.StopBits != 1 && m.StopBits != 2:
		return "stop_bits"
	}
	return "baud"
}

// checkID checks a device, stream or source id and records where it is used.
func checkID(r *yamlconf.Report, p, id string, ids map[string]string) {
	if err := telemetry.CheckName("device", id); err != nil {
		r.Errorf(yamlconf.Join(p, "id"), "%v", err)
	} else if other, dup := ids[id]; dup {
		r.Errorf(yamlconf.Join(p, "id"), "%q is already used at %s", id, other)
	}
	ids[id] = p
}

// own records that owner holds a port or endpoint (key); a second owner is
// an error at field: two readers of one line would split its bytes.
func own(r *yamlconf.Report, owners map[string]string, field, key, what, owner string) {
	if other, ok := owners[key]; ok {
		r.Errorf(field, "%s is already owned by %s; a line has one owner (put all the units on one line on one bus)", what, other)
		return
	}
	owners[key] = owner
}

// checkStreamProfiles resolves each stream's and source's profile: the kind
// must fit the transport, and unset line settings and silence come from it.
func (c *Config) checkStreamProfiles(r *yamlconf.Report) {
	for i := range c.Streams {
		s := &c.Streams[i]
		p := yamlconf.Join("streams", i)
		prof, ok := c.Profiles.Get(s.Profile)
		if !ok {
			r.Errorf(yamlconf.Join(p, "profile"), "%q is not a known profile (known: %v)", s.Profile, c.Profiles.Models())
			continue
		}
		switch prof.Kind {
		case "nmea", "rfid":
			if s.URL != "" || s.File != "" {
				what := map[string]string{"nmea": "an NMEA 0183 instrument", "rfid": "an RFID/NFC reader"}[prof.Kind]
				r.Errorf(yamlconf.Join(p, "profile"), "%q is %s: it needs a port or an address, not a url or file", s.Profile, what)
				continue
			}
		case "ndbc":
			if s.Port != "" || s.Address != "" {
				r.Errorf(yamlconf.Join(p, "profile"), "%q is an NDBC feed: it needs a url or file", s.Profile)
				continue
			}
		case "mqtt":
			r.Errorf(yamlconf.Join(p, "profile"), "%q is an MQTT mapping: put it under mqtt_sources", s.Profile)
			continue
		default:
			r.Errorf(yamlconf.Join(p, "profile"), "%q is a %s profile: put the device on a bus", s.Profile, prof.Kind)
			continue
		}
		if s.Mooring != nil && prof.Kind != "nmea" {
			r.Errorf(yamlconf.Join(p, "mooring"), "is for NMEA buoys that report a position; %q is %s", s.Profile, prof.Kind)
		}
		if s.SilentAfter == nil {
			d := prof.SilentAfter
			s.SilentAfter = &d
		}
		if s.Port == "" {
			continue
		}
		if d := prof.Serial; d != nil {
			if s.Baud == 0 {
				s.Baud = d.Baud
			}
			if s.Parity == "" {
				s.Parity = d.Parity
			}
			if s.StopBits == 0 {
				s.StopBits = d.StopBits
			}
		}
		if s.Baud == 0 {
			r.Errorf(yamlconf.Join(p, "baud"), "is required: the profile does not say")
		} else if err := s.Mode().Check(); err != nil {
			r.Errorf(yamlconf.Join(p, modeField(s.Mode())), "%v", err)
		}
	}
	for i := range c.MQTTSources {
		m := &c.MQTTSources[i]
		p := yamlconf.Join("mqtt_sources", i)
		prof, ok := c.Profiles.Get(m.Profile)
		if !ok {
			r.Errorf(yamlconf.Join(p, "profile"), "%q is not a known profile (known: %v)", m.Profile, c.Profiles.Models())
			continue
		}
		if prof.Mqtt == nil {
			r.Errorf(yamlconf.Join(p, "profile"), "%q is a %s profile, not an MQTT mapping", m.Profile, prof.Kind)
			continue
		}
		m.Mapping = *prof.Mqtt
	}
}

// Where names the stream's port, address, URL or file.
func (s *Stream) Where() string {
	switch {
	case s.Port != "":
		return fmt.Sprintf("%s %d baud", s.Port, s.Baud)
	case s.Address != "":
		return "tcp " + s.Address
	case s.URL != "":
		return s.URL
	}
	return s.File
}
