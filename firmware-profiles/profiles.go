// Package profiles holds Fieldwatch's device profiles: one YAML file per
// device model (vendor/model.yaml) describing how to read it and carrying
// test vectors (raw frames → expected readings) that `go test` checks.
//
// The files in this folder are embedded in the gateway binary (Builtin); a
// gateway can add or override models from a directory of its own (LoadDir).
// Every profile is validated when loaded, with errors naming file, line and
// field.
package profiles

import (
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	"github.com/fieldwatch/fieldwatch/drivers/mqttsrc"
	"github.com/fieldwatch/fieldwatch/drivers/ndbc"
	"github.com/fieldwatch/fieldwatch/drivers/nmea"
	"github.com/fieldwatch/fieldwatch/drivers/rfid"
	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"go.yaml.in/yaml/v3"
)

//go:embed */*.yaml
var builtin embed.FS

// Profile describes one device model.
type Profile struct {
	Model       string         `yaml:"model"` // vendor/model, equal to the file path without .yaml
	Vendor      string         `yaml:"vendor"`
	Name        string         `yaml:"name"`
	Description string         `yaml:"description"`
	Kind        string         `yaml:"kind"` // modbus, nmea, ndbc, rfid or mqtt
	Sources     []string       `yaml:"sources"`
	Modbus      *ModbusProfile `yaml:"modbus"`
	// Serial is a stream device's factory line settings (nmea, rfid).
	Serial *SerialDefaults `yaml:"serial"`
	// SilentAfter marks a stream device failing when it has sent nothing
	// for this long (an instrument that talks continuously); 0 never (a
	// reader that is quiet without tags).
	SilentAfter time.Duration    `yaml:"silent_after"`
	Nmea        *nmea.Config     `yaml:"nmea"`
	Ndbc        *ndbc.Config     `yaml:"ndbc"`
	Rfid        *rfid.Config     `yaml:"rfid"`
	Mqtt        *mqttsrc.Mapping `yaml:"mqtt"`
	Tests       []Test           `yaml:"tests"`

	file string
}

// ModbusProfile is a Modbus register map.
type ModbusProfile struct {
	Defaults SerialDefaults `yaml:"defaults"`
	// MaxGap is how many unused registers a single read may span between
	// fields; reading through a short gap beats a second request.
	MaxGap int            `yaml:"max_gap"`
	Fields []modbus.Field `yaml:"fields"`
	// Settings are the registers that change the unit's address and baud
	// rate, for `fieldwatch-gateway set`.
	Settings Settings `yaml:"settings"`
	// Status, if set, is the instrument's work state (工作状态) register:
	// the gateway turns its value into the device's mode (a mode event
	// when it changes), which an HJ 212 uplink makes the flags M, C, F.
	Status *Status `yaml:"status"`
}

// Status maps one of a model's fields, its work state register, to device
// modes (telemetry.Modes).
type Status struct {
	// Metric names the field (one of fields[].metric) holding the state.
	Metric string `yaml:"metric"`
	// Modes maps the register's values to modes: normal, maintenance,
	// calibration, stopped. A value not listed is normal: the list names
	// the states in which the instrument is not measuring as usual (a
	// fault is a matter of the readings' quality, not a mode). HJ 212-2017
	// table B.10 codes an instrument's work state (i12001) as 0 running,
	// 1 maintenance, 2 fault, 3 calibration, 5 blow-back, 6 power fault,
	// 7 measuring, 8 standardisation (标定), 9 standby, 10 operations and
	// maintenance (运维): {1: maintenance, 3: calibration, 8: calibration,
	// 9: stopped, 10: maintenance} for an instrument that reports them.
	Modes map[int64]string `yaml:"modes"`
}

// Mode is the mode the status register's value v means.
func (s *Status) Mode(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1<<62 {
		if m, ok := s.Modes[int64(v)]; ok {
			return m
		}
	}
	return telemetry.ModeNormal
}

// Settings are a model's configuration registers.
type Settings struct {
	Address *Setting `yaml:"address"`
	Baud    *Setting `yaml:"baud"`
}

// Setting is one configuration register.
type Setting struct {
	Register uint16 `yaml:"register"`
	// Function is how the register is written: 6 (write single register,
	// the default) or 16 (write multiple; some units accept only this).
	Function int `yaml:"function"`
	// Codes maps a baud rate to the value written, for units that take a
	// code (0 = 2400, 1 = 4800, …); without it the baud rate itself is
	// written.
	Codes map[int]uint16 `yaml:"codes"`
	// Note is what a technician must know, e.g. "takes effect after a power cycle".
	Note string `yaml:"note"`
}

// SerialDefaults are a model's factory settings.
type SerialDefaults struct {
	Unit     int    `yaml:"unit"`
	Baud     int    `yaml:"baud"`
	Parity   string `yaml:"parity"` // none, even, odd
	StopBits int    `yaml:"stop_bits"`
}

// Test is a recorded exchange with the device and the readings it must give.
type Test struct {
	Name      string             `yaml:"name"`
	Unit      int                `yaml:"unit"` // default: the profile's default unit
	Exchanges []Exchange         `yaml:"exchanges"`
	Expect    map[string]float64 `yaml:"expect"` // metric → value
	Bad       []string           `yaml:"bad"`    // metrics whose quality must be bad
	// For stream devices: what arrives (text, or hex bytes), and for MQTT
	// sources the topic. A stream test's expect lists every metric produced.
	Input    string `yaml:"input"`
	InputHex Hex    `yaml:"input_hex"`
	Topic    string `yaml:"topic"`
	// Events expected, in order; Errors, refused input counted by kind;
	// SendHex, what the decoder sends (a reader that must be asked).
	Events  []ExpectEvent     `yaml:"events"`
	Errors  map[string]uint64 `yaml:"errors"`
	SendHex Hex               `yaml:"send_hex"`
}

// ExpectEvent is an event a stream test expects.
type ExpectEvent struct {
	Key    string             `yaml:"key"`
	Attrs  map[string]string  `yaml:"attrs"`
	Values map[string]float64 `yaml:"values"`
}

// Exchange is one request and its response, as hex RTU frames.
type Exchange struct {
	Request  Hex `yaml:"request"`
	Response Hex `yaml:"response"`
}

// Hex is bytes written as hex pairs, spaces allowed: "01 03 00 00 00 02 C4 0B".
type Hex []byte

// UnmarshalYAML implements yaml.Unmarshaler.
func (h *Hex) UnmarshalYAML(n *yaml.Node) error {
	b, err := hex.DecodeString(strings.Join(strings.Fields(n.Value), ""))
	if err != nil {
		return yamlconf.TypeError(n, fmt.Sprintf("%q is not hex bytes such as \"01 03 00 00\"", n.Value))
	}
	*h = b
	return nil
}

// File is where the profile was loaded from.
func (p *Profile) File() string { return p.file }

// Validate implements yamlconf.Validator.
func (p *Profile) Validate(r *yamlconf.Report) {
	if p.Model == "" {
		r.Errorf("model", "is required (vendor/model)")
	} else if v, m, ok := strings.Cut(p.Model, "/"); !ok || telemetry.CheckName("vendor", v) != nil || telemetry.CheckName("model", m) != nil {
		r.Errorf("model", "%q is not vendor/model in letters, digits, _ . -", p.Model)
	}
	if p.Name == "" {
		r.Errorf("name", "is required")
	}
	sections := map[string]bool{"modbus": p.Modbus != nil, "nmea": p.Nmea != nil, "ndbc": p.Ndbc != nil,
		"rfid": p.Rfid != nil, "mqtt": p.Mqtt != nil}
	if _, known := sections[p.Kind]; !known {
		r.Errorf("kind", "%q is not a known kind (modbus, nmea, ndbc, rfid, mqtt)", p.Kind)
		return
	}
	for s, present := range sections {
		if present && s != p.Kind {
			r.Errorf(s, "a %s section in a profile of kind %s", s, p.Kind)
		}
	}
	if !sections[p.Kind] {
		r.Errorf(p.Kind, "is required for kind %s", p.Kind)
		return
	}
	checkSection := func(bad map[string]string) {
		for k, msg := range bad {
			r.Errorf(yamlconf.Join(p.Kind, k), "%s", msg)
		}
	}
	switch p.Kind {
	case "modbus":
		p.Modbus.validate(r)
	case "nmea":
		p.Nmea.Normalize()
		checkSection(p.Nmea.Check())
	case "ndbc":
		p.Ndbc.Normalize()
		checkSection(p.Ndbc.Check())
	case "rfid":
		p.Rfid.Normalize()
		checkSection(p.Rfid.Check())
	case "mqtt":
		p.Mqtt.Normalize()
		checkSection(p.Mqtt.Check())
	}
	if p.Serial != nil {
		if p.Kind != "nmea" && p.Kind != "rfid" {
			r.Errorf("serial", "only stream devices on a serial line (nmea, rfid) have one")
		} else if p.Serial.Baud == 0 {
			r.Errorf("serial.baud", "is required")
		}
	}
	if p.SilentAfter < 0 || (p.SilentAfter > 0 && p.Kind == "modbus") {
		r.Errorf("silent_after", "is for stream devices, and not negative")
	}
	if len(p.Tests) == 0 {
		r.Errorf("tests", "every profile needs at least one test vector")
	}
	for i := range p.Tests {
		p.Tests[i].validate(r, yamlconf.Join("tests", i), p)
	}
}

func (m *ModbusProfile) validate(r *yamlconf.Report) {
	d := &m.Defaults
	if d.Unit < 1 || d.Unit > 247 {
		r.Errorf("modbus.defaults.unit", "%d is not a unit address 1..247", d.Unit)
	}
	if d.Parity == "" {
		d.Parity = "none"
	}
	if d.Parity != "none" && d.Parity != "even" && d.Parity != "odd" {
		r.Errorf("modbus.defaults.parity", "%q is not none, even or odd", d.Parity)
	}
	if d.StopBits == 0 {
		d.StopBits = 1
	}
	if m.MaxGap < 0 || m.MaxGap > modbus.MaxReadRegisters {
		r.Errorf("modbus.max_gap", "%d is outside 0..%d", m.MaxGap, modbus.MaxReadRegisters)
	}
	if len(m.Fields) == 0 {
		r.Errorf("modbus.fields", "needs at least one field")
	}
	for name, s := range map[string]*Setting{"address": m.Settings.Address, "baud": m.Settings.Baud} {
		if s == nil {
			continue
		}
		path := "modbus.settings." + name
		if s.Function == 0 {
			s.Function = 6
		}
		if s.Function != 6 && s.Function != 16 {
			r.Errorf(path+".function", "%d is not 6 or 16", s.Function)
		}
		if name == "address" && len(s.Codes) > 0 {
			r.Errorf(path+".codes", "an address is written as is")
		}
		for baud := range s.Codes {
			if !slices.Contains(serialport.Bauds, baud) {
				r.Errorf(path+".codes", "%d is not a standard baud rate", baud)
			}
		}
	}
	seen := map[string]bool{}
	for i := range m.Fields {
		f := &m.Fields[i]
		path := yamlconf.Join("modbus.fields", i)
		f.Normalize()
		if err := telemetry.CheckName("metric", f.Metric); err != nil {
			r.Errorf(yamlconf.Join(path, "metric"), "%v", err)
		} else if seen[f.Metric] {
			r.Errorf(yamlconf.Join(path, "metric"), "%q appears twice", f.Metric)
		}
		seen[f.Metric] = true
		for k, msg := range f.Check() {
			r.Errorf(yamlconf.Join(path, k), "%s", msg)
		}
		if len(f.Unit) > telemetry.MaxUnitLen {
			r.Errorf(yamlconf.Join(path, "unit"), "longer than %d bytes", telemetry.MaxUnitLen)
		}
	}
	if m.Status != nil {
		m.Status.validate(r, seen)
	}
}

func (s *Status) validate(r *yamlconf.Report, metrics map[string]bool) {
	if !metrics[s.Metric] {
		r.Errorf("modbus.status.metric", "%q is not one of the profile's fields", s.Metric)
	}
	if len(s.Modes) == 0 {
		r.Errorf("modbus.status.modes", "maps no value to a mode (%s)", strings.Join(telemetry.Modes, ", "))
	}
	for v, mode := range s.Modes {
		if !telemetry.ValidMode(mode) {
			r.Errorf(yamlconf.Join("modbus.status.modes", strconv.FormatInt(v, 10)), "%q is not a mode (%s)", mode, strings.Join(telemetry.Modes, ", "))
		}
	}
}

func (t *Test) validate(r *yamlconf.Report, path string, p *Profile) {
	if t.Name == "" {
		r.Errorf(yamlconf.Join(path, "name"), "is required")
	}
	if p.Kind == "modbus" {
		if len(t.Exchanges) == 0 {
			r.Errorf(yamlconf.Join(path, "exchanges"), "needs at least one request and response")
		}
		if len(t.Expect) == 0 {
			r.Errorf(yamlconf.Join(path, "expect"), "needs at least one expected value")
		}
	} else {
		if t.Input == "" && len(t.InputHex) == 0 {
			r.Errorf(yamlconf.Join(path, "input"), "a stream test needs an input (or input_hex)")
		}
		if t.Topic != "" && p.Kind != "mqtt" {
			r.Errorf(yamlconf.Join(path, "topic"), "only MQTT tests have a topic")
		}
		return // a stream decoder's metrics are not declared up front
	}
	metrics := map[string]bool{}
	if p.Modbus != nil {
		for _, f := range p.Modbus.Fields {
			metrics[f.Metric] = true
		}
	}
	for m := range t.Expect {
		if !metrics[m] {
			r.Errorf(yamlconf.Join(path, "expect", m), "the profile has no metric %q", m)
		}
	}
	for i, m := range t.Bad {
		if _, ok := t.Expect[m]; !ok {
			r.Errorf(yamlconf.Join(path, "bad")+fmt.Sprintf("[%d]", i), "%q has no expected value", m)
		}
	}
}

// Load parses and validates one profile. file names it in errors.
func Load(file string, data []byte) (*Profile, error) {
	p := &Profile{file: file}
	if err := yamlconf.Decode(file, data, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Set is a collection of profiles by model.
type Set struct {
	byModel map[string]*Profile
}

// Get returns the profile for model.
func (s *Set) Get(model string) (*Profile, bool) {
	p, ok := s.byModel[model]
	return p, ok
}

// Models lists the models in the set, sorted.
func (s *Set) Models() []string {
	out := make([]string, 0, len(s.byModel))
	for m := range s.byModel {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// ModbusModels lists the Modbus profiles' models, sorted.
func (s *Set) ModbusModels() []string {
	var out []string
	for _, m := range s.Models() {
		if s.byModel[m].Modbus != nil {
			out = append(out, m)
		}
	}
	return out
}

// add loads every *.yaml under root of fsys into s; a profile's model must
// match its path (vendor/model.yaml), so a model can be found from its name.
func (s *Set) add(fsys fs.FS, root, display string) error {
	var errs yamlconf.Errors
	err := fs.WalkDir(fsys, root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(path, root), "/")
		name := filepath.Join(display, rel)
		p, err := Load(name, data)
		if err != nil {
			var fe yamlconf.Errors
			if errors.As(err, &fe) {
				errs = append(errs, fe...)
				return nil
			}
			return err
		}
		if want := strings.TrimSuffix(rel, ".yaml"); p.Model != want {
			errs = append(errs, &yamlconf.FieldError{File: name, Line: yamlconf.Lines(data)["model"], Field: "model",
				Msg: fmt.Sprintf("%q does not match the file's path %q", p.Model, want)})
			return nil
		}
		s.byModel[p.Model] = p
		return nil
	})
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

var (
	builtinOnce sync.Once
	builtinSet  *Set
	builtinErr  error
)

// Builtin returns the profiles embedded in this binary.
func Builtin() (*Set, error) {
	builtinOnce.Do(func() {
		builtinSet = &Set{byModel: map[string]*Profile{}}
		builtinErr = builtinSet.add(builtin, ".", "firmware-profiles")
	})
	return builtinSet, builtinErr
}

// WithDir returns the built-in profiles plus those under dir; a profile in
// dir replaces a built-in one of the same model.
func WithDir(dir string) (*Set, error) {
	b, err := Builtin()
	if err != nil {
		return nil, err
	}
	s := &Set{byModel: make(map[string]*Profile, len(b.byModel))}
	for k, v := range b.byModel {
		s.byModel[k] = v
	}
	if dir == "" {
		return s, nil
	}
	if err := s.add(os.DirFS(dir), ".", dir); err != nil {
		return nil, err
	}
	return s, nil
}
