package mqttsrc

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// testProfile is the shape of an mqtt device profile, until the profile
// loader (firmware-profiles) knows kind mqtt.
type testProfile struct {
	Model       string        `yaml:"model"`
	Vendor      string        `yaml:"vendor"`
	Name        string        `yaml:"name"`
	Description string        `yaml:"description"`
	Kind        string        `yaml:"kind"`
	Sources     []string      `yaml:"sources"`
	MQTT        *Mapping      `yaml:"mqtt"`
	Tests       []profileTest `yaml:"tests"`
}

// profileTest is one message and every reading it must give.
type profileTest struct {
	Name   string             `yaml:"name"`
	Topic  string             `yaml:"topic"`
	Input  string             `yaml:"input"`  // the JSON payload
	Expect map[string]float64 `yaml:"expect"` // metric → value, all of them
	Bad    []string           `yaml:"bad"`    // metrics whose quality must be bad
}

// TestProfiles decodes each example profile strictly and replays its test
// vectors through a Mapper.
func TestProfiles(t *testing.T) {
	files, err := filepath.Glob("testdata/profiles/*/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no profiles: %v", err)
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var p testProfile
			if err := yamlconf.Decode(file, data, &p); err != nil {
				t.Fatal(err)
			}
			if p.Kind != "mqtt" || p.MQTT == nil || len(p.Tests) == 0 {
				t.Fatalf("kind %q, mqtt section %v, %d tests; want kind mqtt with a mapping and tests", p.Kind, p.MQTT != nil, len(p.Tests))
			}
			if want := filepath.ToSlash(filepath.Join(filepath.Base(filepath.Dir(file)), filepath.Base(file[:len(file)-len(".yaml")]))); p.Model != want {
				t.Errorf("model %q; want %q (the file path)", p.Model, want)
			}
			p.MQTT.Normalize()
			if bad := p.MQTT.Check(); len(bad) > 0 {
				t.Fatalf("mqtt: %v", bad)
			}
			for _, tc := range p.Tests {
				mp := NewMapper(*p.MQTT, nil)
				out := mp.Map(tc.Topic, []byte(tc.Input), arrival)
				got := map[string]telemetry.Reading{}
				for _, r := range out.Readings {
					if err := r.Validate(); err != nil {
						t.Errorf("%s: %v", tc.Name, err)
					}
					got[r.Metric] = r
				}
				for metric, want := range tc.Expect {
					r, ok := got[metric]
					switch {
					case !ok:
						t.Errorf("%s: no %s reading (stats %+v)", tc.Name, metric, mp.Stats())
					case !near(r.Value, want):
						t.Errorf("%s: %s = %v; want %v", tc.Name, metric, r.Value, want)
					case (r.Quality == telemetry.Bad) != slices.Contains(tc.Bad, metric):
						t.Errorf("%s: %s quality %v; want bad %v", tc.Name, metric, r.Quality, slices.Contains(tc.Bad, metric))
					}
				}
				if len(got) != len(tc.Expect) {
					var metrics []string
					for m := range got {
						metrics = append(metrics, m)
					}
					sort.Strings(metrics)
					t.Errorf("%s: readings %v; want exactly those in expect", tc.Name, metrics)
				}
				if errs := mp.Stats().Errors; len(errs) > 0 {
					t.Errorf("%s: refused input: %v", tc.Name, errs)
				}
			}
		})
	}
}
