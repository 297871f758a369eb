package cli

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
	"github.com/fieldwatch/fieldwatch/test/sim"
)

func TestJudge(t *testing.T) {
	f32 := func(v float32) []uint16 {
		b := math.Float32bits(v)
		return []uint16{uint16(b >> 16), uint16(b)}
	}
	tests := []struct {
		name string
		f    modbus.Field
		raw  []uint16
		want verdict
		note string
	}{
		{"in range", modbus.Field{Metric: "soil_ec", Type: modbus.Uint16, Range: []float64{0, 20000}}, []uint16{949}, plausible, ""},
		{"out of range", modbus.Field{Metric: "soil_ec", Type: modbus.Uint16, Range: []float64{0, 20000}}, []uint16{0xFFFF}, implausible,
			"soil_ec 65535 outside 0…20000"},
		{"a sentinel", modbus.Field{Metric: "co2", Type: modbus.Uint16, Invalid: []int64{0}}, []uint16{0}, implausible, "co2 sentinel 0x0"},
		{"zero", modbus.Field{Metric: "rainfall", Type: modbus.Uint16, Scale: 0.1}, []uint16{0}, zero, ""},
		{"a float of zero", modbus.Field{Metric: "turbidity", Type: modbus.Float32}, []uint16{0, 0}, zero, ""},
		{"a float", modbus.Field{Metric: "turbidity", Type: modbus.Float32}, f32(123.456), plausible, ""},
		{"a tiny float: the words swapped", modbus.Field{Metric: "turbidity", Type: modbus.Float32}, f32(4e-37), implausible, "turbidity 4e-37"},
		{"a tiny float inside a range", modbus.Field{Metric: "water_ph", Type: modbus.Float32, Range: []float64{0, 14}},
			[]uint16{0x0000, 0x40E8}, implausible, "water_ph 2.3e-41"},
		{"a huge float", modbus.Field{Metric: "turbidity", Type: modbus.Float32}, f32(1e30), implausible, "turbidity 1e+30"},
		{"not a number", modbus.Field{Metric: "turbidity", Type: modbus.Float32}, []uint16{0x7FC0, 0}, implausible, "turbidity not a number"},
		{"a large integer without a range", modbus.Field{Metric: "rainfall", Type: modbus.Uint32}, []uint16{0x4000, 0}, plausible, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.Normalize()
			r := row{Metric: f.Metric, Type: f.Type, Raw: tc.raw}
			r.Value, r.Bad = f.Decode(tc.raw)
			if v, note := judge(r); v != tc.want || note != tc.note {
				t.Fatalf("unexpected verdict %d %q; want %d %q", v, note, tc.want, tc.note)
			}
		})
	}
}

// image is a unit whose holding registers never change: a register image.
type image map[uint16]uint16

func (i image) Registers(time.Time) map[uint16]uint16 { return i }

// floats lays float32 values out from register 0 in order o (ABCD or CDAB).
func floats(img image, at uint16, o modbus.Order, vs ...float32) image {
	for i, v := range vs {
		b := math.Float32bits(v)
		hi, lo := uint16(b>>16), uint16(b)
		if o == modbus.CDAB {
			hi, lo = lo, hi
		}
		img[at+uint16(2*i)], img[at+uint16(2*i)+1] = hi, lo
	}
	return img
}

// cdabProfile is a local profile for a BOQU BH-485-NH whose firmware sends
// the low word first; the built-in one assumes ABCD.
const cdabProfile = `model: boqu/bh-485-nh-cdab
vendor: BOQU
name: BH-485-NH, firmware that sends the low word first
kind: modbus
modbus:
  defaults: {unit: 10, baud: 9600}
  fields:
    - {metric: water_temperature, address: 0, type: float32, order: CDAB, unit: "°C"}
    - {metric: water_ph, address: 2, type: float32, order: CDAB, unit: "", range: [0, 14]}
    - {metric: ammonia_nitrogen, address: 16, type: float32, order: CDAB, unit: "mg/L"}
    - {metric: potassium_ion, address: 18, type: float32, order: CDAB, unit: "mg/L"}
tests:
  - name: aquaculture pond
    exchanges:
      - {request: "0A 03 00 00 00 04 45 72", response: "0A 03 08 00 00 41 AC 00 00 40 E8 1E 74"}
      - {request: "0A 03 00 10 00 04 44 B7", response: "0A 03 08 00 00 3F C0 00 00 40 70 85 C9"}
    expect: {water_temperature: 21.5, water_ph: 7.25, ammonia_nitrogen: 1.5, potassium_ion: 3.75}
`

// TestProbeRanksPlausibleProfilesFirst probes units with known register
// images on a simulated RS485 line. Several profiles answer each; the one
// whose values are plausible must come first, with its reason, above those
// that merely match the unit's factory address and baud rate, and a
// profile that decodes garbage must not rank above it.
func TestProbeRanksPlausibleProfilesFirst(t *testing.T) {
	local := t.TempDir()
	os.MkdirAll(filepath.Join(local, "boqu"), 0o755)
	if err := os.WriteFile(filepath.Join(local, "boqu", "bh-485-nh-cdab.yaml"), []byte(cdabProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := profiles.WithDir(local)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := set.Get("boqu/bh-485-nh-cdab"); p.RunTests() != nil {
		t.Fatalf("the local profile fails its own vector: %v", p.RunTests())
	}
	tests := []struct {
		name  string
		unit  uint8
		baud  int
		img   image
		first string // the profile that must rank first, and why
		why   string
		// Other profiles that answer, and why they rank below; "" when
		// they are not listed, having no plausible value.
		others map[string]string
	}{
		{
			// Renke soil probe at 4800, address 1: moisture 34.8 %, 13.5 °C, 949 µS/cm.
			// The turbidity profile reads registers 1-2 as a float: 1e-36.
			name: "a soil probe at its factory settings", unit: 1, baud: 4800,
			img:   image{0: 348, 1: 135, 2: 949},
			first: "renke/rs-ecth-n01", why: "3/3 plausible; factory baud, address",
			others: map[string]string{"remond/turbidity": "", "renke/rs-ws-n01-8": "2/2 plausible; factory baud, address",
				"supmea/sup-do7013": "3/3 plausible; factory address"},
		},
		{
			// A DO probe at 9600, address 1: 21.5 °C, 8.62 mg/L, 97.8 %. The CO2
			// sensor's ranges take these too; only its factory address differs.
			name: "a dissolved-oxygen probe at its factory settings", unit: 1, baud: 9600,
			img:   image{0: 215, 1: 862, 2: 978},
			first: "supmea/sup-do7013", why: "3/3 plausible; factory baud, address",
			others: map[string]string{"remond/turbidity": "", "seeed/sensecap-co2": "3/3 plausible; factory baud",
				"xunchip/xm9505":    "1/1 plausible; factory baud, address",
				"renke/rs-ecth-n01": "2/3 plausible; soil_temperature 86.2 outside -40…80; factory address"},
		},
		{
			// A BOQU probe a technician moved to address 1: 18.3 °C, pH 6.84,
			// NH4-N 0.427 mg/L, K+ 12.6 mg/L. The rain gauge and the turbidity
			// probe match address 1 and 9600 baud, and read one register each.
			name: "an ammonia probe moved to address 1", unit: 1, baud: 9600,
			img:   floats(floats(image{}, 0, modbus.ABCD, 18.3, 6.84), 16, modbus.ABCD, 0.427, 12.6),
			first: "boqu/bh-485-nh", why: "4/4 plausible; factory baud",
			others: map[string]string{"xunchip/xm9505": "1/1 plausible; factory baud, address",
				"remond/turbidity":   "1/1 plausible; factory baud, address",
				"generic/gauge-3acc": "3/3 plausible; factory baud",
				"supmea/sup-do7013": "1/3 plausible; dissolved_oxygen 262.14 outside 0…20, " +
					"do_saturation 1660.2 outside 0…200; factory baud, address"},
		},
		{
			// A BOQU probe whose firmware sends the low word first: the built-in
			// profile (ABCD, same factory settings) decodes 2.4e-41 °C, pH 2.3e-41.
			name: "an ammonia probe sending floats low word first", unit: 10, baud: 9600,
			img:   floats(floats(image{}, 0, modbus.CDAB, 21.5, 7.25), 16, modbus.CDAB, 1.5, 3.75),
			first: "boqu/bh-485-nh-cdab", why: "4/4 plausible; factory baud, address",
			others: map[string]string{"boqu/bh-485-nh": "", "generic/gauge-3acc": "1/3 plausible, 2 zero; factory baud"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bus := sim.NewBus()
			bus.AddUnit(tc.unit, tc.img, tc.baud)
			ctx, cancel := context.WithCancel(context.Background())
			srv, err := sim.ServeRTU(ctx, bus, serialport.Mode{Baud: tc.baud})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cancel(); srv.Wait() })
			code, out, errOut := run(t, "probe", "-port", srv.Path, "-baud", strconv.Itoa(tc.baud), "-units", strconv.Itoa(int(tc.unit)),
				"-profiles", local)
			if code != ExitOK {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			ranked := rankedProfiles(out)
			if len(ranked) == 0 || ranked[0].model != tc.first || ranked[0].why != tc.why {
				t.Fatalf("unexpected ranking; want %s (%s) first:\n%s", tc.first, tc.why, out)
			}
			for m, why := range tc.others {
				got, listed := "", false
				for _, r := range ranked[1:] {
					if r.model == m {
						got, listed = r.why, true
					}
				}
				if got != why || listed != (why != "") {
					t.Errorf("%s: unexpected reason %q (listed %v); want %q in:\n%s", m, got, listed, why, out)
				}
			}
		})
	}
}

type ranked struct{ model, why string }

// rankedProfiles reads probe's table: the profiles of its one unit, best
// first, with the reason it gives.
func rankedProfiles(out string) []ranked {
	lines := strings.Split(out, "\n")
	if len(lines) == 0 {
		return nil
	}
	header := lines[0]
	col := strings.Index(header, "PROFILES THAT FIT")
	why := strings.Index(header, "WHY")
	vals := strings.Index(header, "VALUES")
	var rs []ranked
	for _, l := range lines[1:] {
		if len(l) < vals || col < 0 || why < 0 {
			break
		}
		rs = append(rs, ranked{strings.TrimSpace(l[col:why]), strings.TrimSpace(l[why:vals])})
	}
	return rs
}
