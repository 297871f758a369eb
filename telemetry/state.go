package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// State is what a gateway announces, retained, on its state topic: online
// with its description when it connects and periodically, offline as its
// last will or when it stops.
type State struct {
	State    string        `json:"state"` // StateOnline or StateOffline
	Version  string        `json:"version,omitempty"`
	Site     string        `json:"site,omitempty"`
	Location *Location     `json:"location,omitempty"`
	Started  time.Time     `json:"started,omitzero"`
	Time     time.Time     `json:"time,omitzero"` // when this state was published
	Buffered uint64        `json:"buffered"`      // readings waiting for an ack
	Devices  []DeviceState `json:"devices,omitempty"`
}

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
	if l := s.Location; l != nil && (l.Lat < -90 || l.Lat > 90 || l.Lon < -180 || l.Lon > 180) {
		return s, fmt.Errorf("state: location %v,%v is not on Earth", l.Lat, l.Lon)
	}
	for i, d := range s.Devices {
		if err := CheckName("device", d.ID); err != nil {
			return s, fmt.Errorf("state: device %d: %w", i, err)
		}
	}
	return s, nil
}
