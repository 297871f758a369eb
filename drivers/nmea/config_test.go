package nmea

import (
	"math"
	"slices"
	"sort"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestConfigNormalize(t *testing.T) {
	var c Config
	c.Normalize()
	if c.MWVReference != MWVBoth || c.MaxLine != DefaultMaxLine || len(c.XDR) != len(DefaultXDR()) {
		t.Fatalf("defaults %+v", c)
	}
	c = Config{Sentences: []string{" mda", "Mwv "}, MWVReference: "true", XDR: []XDRMap{{Type: "c", Name: " TEMP ", Metric: "t"}}}
	c.Normalize()
	if !slices.Equal(c.Sentences, []string{"MDA", "MWV"}) || c.MWVReference != MWVTrue ||
		c.XDR[0].Type != "C" || c.XDR[0].Name != "TEMP" || c.XDR[0].Scale != 1 {
		t.Fatalf("normalized %+v", c)
	}
	c = Config{XDR: []XDRMap{}}
	c.Normalize()
	if c.XDR == nil || len(c.XDR) != 0 {
		t.Fatal("an empty xdr list became the defaults")
	}
}

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		keys []string
	}{
		{"zero is fine", Config{}, nil},
		{"every supported sentence", Config{Sentences: SupportedSentences(), MWVReference: "R"}, nil},
		{"unknown sentence", Config{Sentences: []string{"GSV"}}, []string{"sentences"}},
		{"bad reference", Config{MWVReference: "G"}, []string{"mwv_reference"}},
		{"bad xdr", Config{XDR: []XDRMap{{Type: "Q", Metric: "Air Temp", Unit: "\"", Scale: math.NaN(), XDRUnit: "BB"}}},
			[]string{"xdr[0].type", "xdr[0].metric", "xdr[0].unit", "xdr[0].scale", "xdr[0].xdr_unit"}},
		{"duplicate xdr", Config{XDR: []XDRMap{{Type: "C", Name: "T", Metric: "a"}, {Type: "C", Name: "t", Metric: "b"}}}, []string{"xdr[1]"}},
		{"bad metric name", Config{Metrics: []string{"wind speed"}}, []string{"metrics"}},
		{"line too short", Config{MaxLine: 40}, []string{"max_line"}},
		{"line too long", Config{MaxLine: 1 << 20}, []string{"max_line"}},
		{"negative transducer depth", Config{TransducerDepth: -1}, []string{"transducer_depth"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Normalize()
			bad := tt.cfg.Check()
			var keys []string
			for k := range bad {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			want := slices.Clone(tt.keys)
			sort.Strings(want)
			if !slices.Equal(keys, want) {
				t.Fatalf("problems %v, want keys %v", bad, want)
			}
		})
	}
	for _, x := range DefaultXDR() {
		if bad := x.check(); len(bad) > 0 {
			t.Errorf("default %+v: %v", x, bad)
		}
	}
}

// TestConfigYAML decodes an nmea section as a profile would.
func TestConfigYAML(t *testing.T) {
	src := `
sentences: [MDA, MWV, GGA, RMC]
mwv_reference: T
transducer_depth: 0.8
xdr:
  - {type: C, name: TEMP, metric: air_temperature, unit: "°C"}
  - {type: P, name: STNP, xdr_unit: B, metric: station_pressure, unit: hPa, scale: 1000}
metrics: [air_temperature, wind_speed]
`
	var c Config
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	if bad := c.Check(); len(bad) > 0 {
		t.Fatal(bad)
	}
	if c.MWVReference != "T" || c.TransducerDepth != 0.8 || len(c.XDR) != 2 || c.XDR[1].Scale != 1000 || c.MaxLine != 512 {
		t.Fatalf("%+v", c)
	}
}
