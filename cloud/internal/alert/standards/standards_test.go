package standards

import (
	"math"
	"testing"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		table string
		value float64
		want  string
	}{
		{"gb3838_do", 8, "I"},
		{"gb3838_do", 7.5, "I"}, // "≥ 7.5"
		{"gb3838_do", 5, "III"},
		{"gb3838_do", 4.9, "IV"},
		{"gb3838_do", 2, "V"},
		{"gb3838_do", 1.9, "worse_than_V"},
		{"gb3838_nh3n", 0.15, "I"},
		{"gb3838_nh3n", 1.0, "III"},
		{"gb3838_nh3n", 1.01, "IV"},
		{"gb3838_nh3n", 2.5, "worse_than_V"},
		{"gb3838_cod", 15, "I"}, // I and II share 15: the better class wins
		{"gb3838_cod", 16, "III"},
		{"hj633_pm25_24h", 35, "excellent"},
		{"hj633_pm25_24h", 76, "light"},
		{"hj633_pm25_24h", 251, "severe"},
		{"hj633_aqi", 201, "heavy"},
		{"beaufort", 0.1, "F0"},
		{"beaufort", 10.8, "F6"},
		{"beaufort", 13.8, "F6"},
		{"beaufort", 13.9, "F7"},
		{"beaufort", 17.2, "F8"},
		{"beaufort", 32.7, "F12"},
		{"beaufort", 60, "F17"},
		{"soil_drought", 61, "none"},
		{"soil_drought", 60, "light"}, // none is R > 60
		{"soil_drought", 45, "moderate"},
		{"soil_drought", 30, "extreme"},
		{"gb3838_do", math.NaN(), "worse_than_V"},
	}
	for _, c := range cases {
		tb, ok := Lookup(c.table)
		if !ok {
			t.Fatalf("no table %s", c.table)
		}
		if got := tb.Classes[tb.Classify(c.value)]; got != c.want {
			t.Errorf("%s(%g) = %s, want %s", c.table, c.value, got, c.want)
		}
	}
}

func TestIAQIAndTHI(t *testing.T) {
	// HJ 633-2012: PM2.5 75 µg/m³ is IAQI 100; 55 is halfway from 50 to 100.
	for _, c := range []struct{ conc, want float64 }{{75, 100}, {55, 75}, {0, 0}, {600, 500}, {250, 300}} {
		if got := IAQI(c.conc, PM25Conc, IAQIIndex); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("IAQI(PM2.5 %g) = %g, want %g", c.conc, got, c.want)
		}
	}
	// 30 °C and 60 % RH: 24 + 0.6·15.6 + 46.4 = 79.76 (LWSI "danger").
	if got := THI(30, 60); math.Abs(got-79.76) > 1e-9 {
		t.Errorf("THI(30, 60) = %g", got)
	}
}
