package nmea

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"gopkg.in/yaml.v3"
)

// exampleProfile is the part of a device profile this package reads, until
// the profile loader knows kind nmea.
type exampleProfile struct {
	Model string `yaml:"model"`
	Kind  string `yaml:"kind"`
	NMEA  Config `yaml:"nmea"`
	Tests []struct {
		Name   string             `yaml:"name"`
		Input  string             `yaml:"input"`
		Expect map[string]float64 `yaml:"expect"`
		Bad    []string           `yaml:"bad"`
	} `yaml:"tests"`
}

// TestExampleProfiles runs the test vectors of the example profiles.
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
		var p exampleProfile
		if err := yaml.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if p.Kind != "nmea" || len(p.Tests) == 0 {
			t.Fatalf("%s: kind %q, %d tests", path, p.Kind, len(p.Tests))
		}
		p.NMEA.Normalize()
		if bad := p.NMEA.Check(); len(bad) > 0 {
			t.Fatalf("%s: %v", path, bad)
		}
		for _, tt := range p.Tests {
			d := New(p.NMEA, "dev", nil)
			out := d.Feed([]byte(tt.Input), t0)
			checkOutput(t, out)
			if diff := sameValues(values(out.Readings), tt.Expect); diff != "" {
				t.Errorf("%s: %s: %s (stats %v)", path, tt.Name, diff, d.Stats())
			}
			for _, r := range out.Readings {
				if (r.Quality == telemetry.Bad) != slices.Contains(tt.Bad, r.Metric) {
					t.Errorf("%s: %s: %s quality %v", path, tt.Name, r.Metric, r.Quality)
				}
			}
		}
	}
}
