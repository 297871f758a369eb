// Package standards holds the class tables that classification rules judge
// against, as versioned data with the standard they come from: surface
// water classes (GB 3838-2002), air quality categories (HJ 633-2012),
// wind force (GB/T 28591-2012) and soil-moisture drought grades
// (GB/T 20481), and the published indices rules derive (THI, IAQI).
package standards

import (
	"math"
	"slices"
	"sort"
	"strconv"
)

// Table maps a value to a class. Classes run from best (index 0) to
// worst. Bounds[i] is class i's limit: with HigherWorse, the largest value
// still in class i (a pollutant's "≤" limit, a wind force's upper speed);
// otherwise the smallest (dissolved oxygen's "≥" limit). Beyond the last
// bound is the last class. Exclusive makes the limit itself fall into the
// worse class (soil moisture: "none" is R > 60 %).
type Table struct {
	Name        string
	Standard    string
	Quantity    string
	Unit        string
	Classes     []string
	Bounds      []float64 // len(Classes)-1
	HigherWorse bool
	Exclusive   bool
}

// Classify returns the class index of v (NaN is the worst class).
func (t *Table) Classify(v float64) int {
	if math.IsNaN(v) {
		return len(t.Classes) - 1
	}
	for i, b := range t.Bounds {
		var in bool
		switch {
		case t.HigherWorse && t.Exclusive:
			in = v < b
		case t.HigherWorse:
			in = v <= b
		case t.Exclusive:
			in = v > b
		default:
			in = v >= b
		}
		if in {
			return i
		}
	}
	return len(t.Classes) - 1
}

// Index returns the index of a class name, or -1.
func (t *Table) Index(class string) int { return slices.Index(t.Classes, class) }

// ClassNames lists the classes, best first.
func (t *Table) ClassNames() []string { return slices.Clone(t.Classes) }

var tables = map[string]*Table{}

func add(t *Table) {
	if len(t.Bounds) != len(t.Classes)-1 {
		panic("BUG: standards table " + t.Name + " has mismatched bounds")
	}
	tables[t.Name] = t
}

// Lookup finds a table by name.
func Lookup(name string) (*Table, bool) {
	t, ok := tables[name]
	return t, ok
}

// Names lists the tables, sorted.
func Names() []string {
	out := make([]string, 0, len(tables))
	for n := range tables {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var gb3838 = []string{"I", "II", "III", "IV", "V", "worse_than_V"}

func init() {
	// GB 3838-2002 Environmental quality standards for surface water,
	// table 1 (mg/L). Dissolved oxygen is "≥", the others "≤".
	for _, t := range []struct {
		name, quantity string
		bounds         []float64
		higherWorse    bool
	}{
		{"gb3838_do", "dissolved oxygen", []float64{7.5, 6, 5, 3, 2}, false},
		{"gb3838_codmn", "permanganate index (CODMn)", []float64{2, 4, 6, 10, 15}, true},
		{"gb3838_cod", "chemical oxygen demand (COD)", []float64{15, 15, 20, 30, 40}, true},
		{"gb3838_bod5", "five-day biochemical oxygen demand (BOD5)", []float64{3, 3, 4, 6, 10}, true},
		{"gb3838_nh3n", "ammonia nitrogen (NH3-N)", []float64{0.15, 0.5, 1.0, 1.5, 2.0}, true},
		{"gb3838_tp", "total phosphorus (rivers)", []float64{0.02, 0.1, 0.2, 0.3, 0.4}, true},
		{"gb3838_tp_lake", "total phosphorus (lakes and reservoirs)", []float64{0.01, 0.025, 0.05, 0.1, 0.2}, true},
		{"gb3838_tn", "total nitrogen (lakes and reservoirs)", []float64{0.2, 0.5, 1.0, 1.5, 2.0}, true},
	} {
		add(&Table{Name: t.name, Standard: "GB 3838-2002 table 1", Quantity: t.quantity, Unit: "mg/L",
			Classes: gb3838, Bounds: t.bounds, HigherWorse: t.higherWorse})
	}
	// HJ 633-2012 Technical regulation on ambient air quality index, table 1
	// (24-hour means, µg/m³) and table 2's categories.
	aqi := []string{"excellent", "good", "light", "moderate", "heavy", "severe"}
	add(&Table{Name: "hj633_pm25_24h", Standard: "HJ 633-2012 tables 1 and 2", Quantity: "PM2.5 24-hour mean",
		Unit: "µg/m³", Classes: aqi, Bounds: []float64{35, 75, 115, 150, 250}, HigherWorse: true})
	add(&Table{Name: "hj633_pm10_24h", Standard: "HJ 633-2012 tables 1 and 2", Quantity: "PM10 24-hour mean",
		Unit: "µg/m³", Classes: aqi, Bounds: []float64{50, 150, 250, 350, 420}, HigherWorse: true})
	add(&Table{Name: "hj633_aqi", Standard: "HJ 633-2012 table 2", Quantity: "air quality index",
		Classes: aqi, Bounds: []float64{50, 100, 150, 200, 300}, HigherWorse: true})
	// GB/T 28591-2012 Wind force scale (10-minute mean at 10 m, m/s):
	// the upper speed of forces 0 … 16; beyond is force 17.
	forces := make([]string, 18)
	for i := range forces {
		forces[i] = "F" + strconv.Itoa(i)
	}
	add(&Table{Name: "beaufort", Standard: "GB/T 28591-2012", Quantity: "wind speed", Unit: "m/s", Classes: forces,
		Bounds:      []float64{0.2, 1.5, 3.3, 5.4, 7.9, 10.7, 13.8, 17.1, 20.7, 24.4, 28.4, 32.6, 36.9, 41.4, 46.1, 50.9, 56.0},
		HigherWorse: true})
	// GB/T 20481 relative soil moisture R (% of field capacity, root
	// layer): none R > 60, light 50 < R ≤ 60, moderate 40 < R ≤ 50,
	// severe 30 < R ≤ 40, extreme R ≤ 30.
	add(&Table{Name: "soil_drought", Standard: "GB/T 20481 (relative soil moisture)", Quantity: "relative soil moisture",
		Unit: "%", Classes: []string{"none", "light", "moderate", "severe", "extreme"},
		Bounds: []float64{60, 50, 40, 30}, Exclusive: true})
}

// THI is the temperature-humidity index for livestock, from air
// temperature t (°C) and relative humidity rh (%): 0.8·T + RH·(T − 14.4) +
// 46.4 with RH as a fraction (NRC 1971 form used by the LCI Livestock
// Weather Safety Index).
func THI(t, rh float64) float64 { return 0.8*t + rh/100*(t-14.4) + 46.4 }

// IAQI returns the individual air quality index of a concentration c
// against breakpoints (concentration, index) pairs, by HJ 633-2012
// formula (1): linear between breakpoints, 500 beyond the last.
func IAQI(c float64, conc, index []float64) float64 {
	if c <= conc[0] {
		return index[0]
	}
	for i := 1; i < len(conc); i++ {
		if c <= conc[i] {
			return (index[i]-index[i-1])/(conc[i]-conc[i-1])*(c-conc[i-1]) + index[i-1]
		}
	}
	return index[len(index)-1]
}

// HJ 633-2012 table 1 breakpoints for 24-hour means.
var (
	IAQIIndex = []float64{0, 50, 100, 150, 200, 300, 400, 500}
	PM25Conc  = []float64{0, 35, 75, 115, 150, 250, 350, 500}
	PM10Conc  = []float64{0, 50, 150, 250, 350, 420, 500, 600}
)
