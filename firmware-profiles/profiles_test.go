package profiles

import (
	"strings"
	"testing"
)

// TestBuiltin loads every shipped profile and replays its test vectors.
func TestBuiltin(t *testing.T) {
	set, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	models := set.Models()
	for _, want := range []string{"renke/rs-ecth-n01", "renke/rs-ws-n01-8"} {
		if _, ok := set.Get(want); !ok {
			t.Errorf("profile %s is missing (have %v)", want, models)
		}
	}
	for _, m := range models {
		p, _ := set.Get(m)
		t.Run(m, func(t *testing.T) {
			if err := p.RunTests(); err != nil {
				t.Error(err)
			}
		})
	}
}

const goodProfile = `model: acme/probe
name: Probe
kind: modbus
modbus:
  defaults: {unit: 1, baud: 9600}
  fields:
    - metric: soil_moisture
      address: 0
      scale: 0.1
      unit: "%"
      range: [0, 100]
tests:
  - name: t
    exchanges:
      - request: 01 03 00 00 00 01 84 0A
        response: 01 03 02 02 92 38 89
    expect:
      soil_moisture: 65.8
`

// statusSection declares the probe's field as a work state register.
const statusSection = `  status:
    metric: soil_moisture
    modes:
      1: maintenance
      3: calibration
      9: stopped
`

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name, from, to, want string
	}{
		{"good", "", "", ""},
		{"unknown key", "scale: 0.1", "scael: 0.1", `p.yaml:9: modbus.fields[0].scael: unknown field (did you mean "scale"?)`},
		{"bad type", "address: 0", "address: 0\n      type: uint8", `p.yaml:9: modbus.fields[0].type: "uint8" is not one of`},
		{"bad hex", "84 0A", "84 0G", `p.yaml:15: tests[0].exchanges[0].request: "01 03 00 00 00 01 84 0G" is not hex`},
		{"bad unit", "unit: 1,", "unit: 0,", "p.yaml:5: modbus.defaults.unit: 0 is not a unit address"},
		{"unknown metric in test", "soil_moisture: 65.8", "soil_moist: 65.8", "p.yaml:18: tests[0].expect.soil_moist: the profile has no metric"},
		{"bad kind", "kind: modbus", "kind: can", `p.yaml:3: kind: "can" is not a known kind`},
		{"bad model", "acme/probe", "acme probe", "p.yaml:1: model:"},
		{"bad range", "range: [0, 100]", "range: [100, 0]", "p.yaml:11: modbus.fields[0].range: must be [min, max]"},
		{"status", "tests:", statusSection + "tests:", ""},
		{"status of no field", "tests:", strings.Replace(statusSection, "metric: soil_moisture", "metric: work_state", 1) + "tests:",
			`p.yaml:13: modbus.status.metric: "work_state" is not one of the profile's fields`},
		{"status not a mode", "tests:", strings.Replace(statusSection, "3: calibration", "3: calibrating", 1) + "tests:",
			`p.yaml:16: modbus.status.modes.3: "calibrating" is not a mode (normal, maintenance, calibration, stopped)`},
		{"status value not a number", "tests:", strings.Replace(statusSection, "3: calibration", "three: calibration", 1) + "tests:",
			"p.yaml:16"},
		{"status without modes", "tests:", "  status: {metric: soil_moisture}\ntests:", "p.yaml:12: modbus.status.modes: maps no value to a mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("p.yaml", []byte(strings.Replace(goodProfile, tc.from, tc.to, 1)))
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

func TestVectorsCatchMistakes(t *testing.T) {
	tests := []struct {
		name, from, to, want string
	}{
		{"wrong value", "soil_moisture: 65.8", "soil_moisture: 65.9", "soil_moisture = 65.8, want 65.9"},
		{"wrong scale", "scale: 0.1", "scale: 0.01", "soil_moisture = 6.58, want 65.8"},
		{"request differs", "address: 0", "address: 1", "client sent 01 03 00 01"},
		{"crc", "38 89", "38 8A", "CRC mismatch"},
		{"bad not expected", "65.8\n", "65.8\n    bad: [soil_moisture]\n", "want bad true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Load("p.yaml", []byte(strings.Replace(goodProfile, tc.from, tc.to, 1)))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.RunTests(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RunTests error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestStatusMode: the register's value to a mode; a value not listed, or
// not an integer, is normal.
func TestStatusMode(t *testing.T) {
	p, err := Load("p.yaml", []byte(strings.Replace(goodProfile, "tests:", statusSection+"tests:", 1)))
	if err != nil {
		t.Fatal(err)
	}
	s := p.Modbus.Status
	for v, want := range map[float64]string{0: "normal", 1: "maintenance", 3: "calibration", 9: "stopped", 2: "normal",
		3.5: "normal", -1: "normal", 1e300: "normal"} {
		if got := s.Mode(v); got != want {
			t.Errorf("Mode(%v) = %s, want %s", v, got, want)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(goodProfile))
	f.Add([]byte(strings.Replace(goodProfile, "tests:", statusSection+"tests:", 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load("f.yaml", data)
		if err != nil {
			return
		}
		_ = p.RunTests() // must not panic on any profile that loads
	})
}
