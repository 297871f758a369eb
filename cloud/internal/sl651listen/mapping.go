package sl651listen

import (
	"fmt"
	"strings"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/protocols/sl651"
)

// Target is where an element's values go: a metric and its unit, or
// nowhere (Drop).
type Target struct {
	Metric, Unit string
	Drop         bool
}

// defaultMetrics names the elements Fieldwatch has a metric for
// (docs/standards/sl651.md, "Fieldwatch as central station"). Every other
// element that carries values is stored as sl651_<identifier in lower
// case>, so nothing a station sends is lost for want of a name.
var defaultMetrics = map[uint16]string{
	// Rainfall. PT, the station's running total, is `rainfall` as for the
	// tipping-bucket gauges' profiles (an accumulator: the rainstorm rules
	// take its increase); the period totals have their period in the name.
	0x26: "rainfall",
	0x20: "rainfall_current",
	0x1A: "rainfall_1h", 0x1B: "rainfall_2h", 0x1C: "rainfall_3h", 0x1D: "rainfall_6h", 0x1E: "rainfall_12h",
	0x1F: "rainfall_day",
	0x21: "rainfall_1min", 0x22: "rainfall_5min", 0x23: "rainfall_10min", 0x24: "rainfall_30min",
	0x25: "rainfall_storm",
	0xF4: "rainfall_5min", // DRP: the hour's twelve 5-minute totals
	// Water level.
	0x39: "water_level", // Z: instantaneous river level, tide level
	0x3A: "water_level_downstream", 0x3B: "water_level_upstream",
	0x3C: "water_level_1", 0x3D: "water_level_2", 0x3E: "water_level_3", 0x3F: "water_level_4",
	0x40: "water_level_5", 0x41: "water_level_6", 0x42: "water_level_7", 0x43: "water_level_8",
	0xF5: "water_level_relative", 0xF6: "water_level_relative_2", 0xF7: "water_level_relative_3",
	0xF8: "water_level_relative_4", 0xF9: "water_level_relative_5", 0xFA: "water_level_relative_6",
	0xFB: "water_level_relative_7", 0xFC: "water_level_relative_8",
	// Flow and velocity.
	0x27: "flow",
	0x28: "flow_1", 0x29: "flow_2", 0x2A: "flow_3", 0x2B: "flow_4", 0x2C: "flow_5", 0x2D: "flow_6",
	0x2E: "flow_7", 0x2F: "flow_8",
	0x30: "flow_total", 0x31: "flow_gate",
	0x36: "velocity_mean", 0x37: "velocity",
	// Station.
	0x38: "supply_voltage",
	// Weather, soil, evaporation, groundwater, waves.
	0x02: "air_temperature", 0x08: "air_pressure", 0x18: "air_humidity", 0x35: "wind_speed",
	0x06: "evaporation_day", 0x07: "evaporation_current", 0x0D: "ground_temperature", 0x0E: "groundwater_depth",
	0x0F: "wave_height",
	0x10: "soil_moisture_10cm", 0x11: "soil_moisture_20cm", 0x12: "soil_moisture_30cm", 0x13: "soil_moisture_40cm",
	0x14: "soil_moisture_50cm", 0x15: "soil_moisture_60cm", 0x16: "soil_moisture_80cm", 0x17: "soil_moisture_100cm",
	// Water quality, with the names of the water-quality profiles and rules.
	0x03: "water_temperature", 0x46: "water_ph", 0x47: "dissolved_oxygen", 0x48: "conductivity", 0x49: "turbidity",
	0x4A: "permanganate_index", 0x4B: "redox_potential", 0x4C: "ammonia_nitrogen", 0x4D: "total_phosphorus",
	0x4E: "total_nitrogen", 0x4F: "total_organic_carbon", 0x57: "chlorophyll_a",
}

// units writes appendix C's units (as protocols/sl651 spells them) the way
// Fieldwatch's profiles do.
var units = map[string]string{
	"Cel": "°C", "m3/s": "m³/s", "uS/cm": "µS/cm", "m2": "m²", "m3": "m³", "m3/h": "m³/h", "kg/m3": "kg/m³",
	"{turbidity_degree}": "度", "10^4.t": "10⁴ t",
}

// DefaultTarget is where an element goes without an override.
func DefaultTarget(el sl651.Element) Target {
	u := el.Unit
	if v, ok := units[u]; ok {
		u = v
	}
	m, ok := defaultMetrics[el.ID]
	if !ok {
		m = "sl651_" + strings.ToLower(el.Code)
	}
	return Target{Metric: m, Unit: u}
}

// mapping is one station's element → target table.
type mapping map[uint16]Target

// newMapping applies a station's overrides (checked by config) to the
// defaults.
func newMapping(overrides map[string]string) (mapping, error) {
	m := mapping{}
	for k, metric := range overrides {
		el, ok := config.SL651Element(k)
		if !ok {
			return nil, fmt.Errorf("sl651: element %q", k)
		}
		t := DefaultTarget(el)
		if metric == "-" {
			t = Target{Drop: true}
		} else {
			t.Metric = metric
		}
		m[el.ID] = t
	}
	return m, nil
}

func (m mapping) target(el sl651.Element) Target {
	if t, ok := m[el.ID]; ok {
		return t
	}
	return DefaultTarget(el)
}
