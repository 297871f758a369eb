package ndbc

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"gopkg.in/yaml.v3"
)

// TestExampleProfiles runs the test vectors of the example profiles, as
// the profile loader will once it knows kind ndbc.
func TestExampleProfiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/profiles/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example profiles")
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Kind  string `yaml:"kind"`
			NDBC  Config `yaml:"ndbc"`
			Tests []struct {
				Name   string             `yaml:"name"`
				Input  string             `yaml:"input"`
				Expect map[string]float64 `yaml:"expect"`
				Bad    []string           `yaml:"bad"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		p.NDBC.Normalize()
		if bad := p.NDBC.Check(); len(bad) > 0 || p.Kind != "ndbc" || len(p.Tests) == 0 {
			t.Fatalf("%s: kind %q, %d tests, %v", path, p.Kind, len(p.Tests), bad)
		}
		for _, tt := range p.Tests {
			d := New(p.NDBC, "dev")
			out := d.Feed([]byte(tt.Input), now)
			checkOutput(t, out)
			got := map[string]float64{}
			for _, r := range out.Readings {
				got[r.Metric] = r.Value
				if (r.Quality == telemetry.Bad) != slices.Contains(tt.Bad, r.Metric) {
					t.Errorf("%s: %s: %s quality %v", path, tt.Name, r.Metric, r.Quality)
				}
			}
			if len(got) != len(tt.Expect) {
				t.Errorf("%s: %s: got %v, want %v", path, tt.Name, got, tt.Expect)
			}
			for k, w := range tt.Expect {
				if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-9 {
					t.Errorf("%s: %s: %s = %v, want %v", path, tt.Name, k, g, w)
				}
			}
		}
	}
}
