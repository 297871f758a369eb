package nmea

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// MWV reference selections for Config.MWVReference.
const (
	MWVTrue     = "T"    // report only T (true, compass-corrected) wind
	MWVRelative = "R"    // report only R (relative to the instrument or bow) wind
	MWVBoth     = "both" // report both, under distinct metric names
)

// Line length limits for Config.MaxLine.
const (
	DefaultMaxLine = 512  // default hard limit on a frame's length
	minMaxLine     = 82   // the standard's own limit
	maxMaxLine     = 4096 // beyond this a "line" is a stuck stream
)

// Config is the nmea section of a device profile.
type Config struct {
	// Sentences lists the sentence formatters to use (MDA, MWV, XDR, GGA,
	// PNORW, …); sentences of other formatters are counted as "ignored".
	// Empty means every supported formatter (SupportedSentences).
	Sentences []string `yaml:"sentences"`
	// MWVReference chooses the MWV sentences reported: "T" (true wind, as
	// wind_direction and wind_speed), "R" (relative wind, as
	// wind_direction_relative and wind_speed_relative) or "both" (default).
	// Gill's gust reference "G" (wind_gust) is always reported.
	MWVReference string `yaml:"mwv_reference"`
	// XDR maps transducer measurements to metrics. Nil (the key left out)
	// means DefaultXDR; an empty list means no XDR measurement is used.
	XDR []XDRMap `yaml:"xdr"`
	// Metrics, when not empty, is an allow-list of metric names; other
	// readings are dropped (a sentence left with none is "ignored").
	Metrics []string `yaml:"metrics"`
	// AllowNoChecksum accepts sentences without "*hh". By default they are
	// refused and counted as "no_checksum".
	AllowNoChecksum bool `yaml:"allow_no_checksum"`
	// MaxLine is the longest frame accepted, from the start delimiter to
	// the checksum, in bytes (default 512, at least 82).
	MaxLine int `yaml:"max_line"`
	// TransducerDepth is the depth of the echo sounder's transducer below
	// the waterline in metres, added to depths measured from the
	// transducer (DBT, and DPT without a positive offset). Default 0.
	TransducerDepth float64 `yaml:"transducer_depth"`
}

// XDRMap maps one kind of XDR transducer measurement to a metric:
// value = raw × Scale + Offset.
type XDRMap struct {
	Type    string  `yaml:"type"`     // transducer type letter, e.g. C (temperature), P (pressure)
	Name    string  `yaml:"name"`     // transducer name, compared without case, e.g. TEMP; may be empty
	XDRUnit string  `yaml:"xdr_unit"` // when set, only measurements in this unit letter, e.g. B (bar)
	Metric  string  `yaml:"metric"`   // reading name, e.g. air_temperature
	Unit    string  `yaml:"unit"`     // reading unit after scaling, e.g. °C
	Scale   float64 `yaml:"scale"`    // default 1
	Offset  float64 `yaml:"offset"`
}

// DefaultXDR returns the XDR mappings used when Config.XDR is left out: the
// transducer names of Gill MaxiMet/GMX stations (TEMP, DEWP, DP, RH, PRESS),
// Navico and Airmar (AIRTEMP, BARO, Barometer) and NMEA 2000 gateways
// (ENV_OUTAIR_T, ENV_WATER_T, ENV_ATMOS_P).
func DefaultXDR() []XDRMap {
	return []XDRMap{
		{Type: "C", Name: "TEMP", Metric: MetricAirTemperature, Unit: UnitCelsius},
		{Type: "C", Name: "AIRTEMP", Metric: MetricAirTemperature, Unit: UnitCelsius},
		{Type: "C", Name: "ENV_OUTAIR_T", Metric: MetricAirTemperature, Unit: UnitCelsius},
		{Type: "C", Name: "ENV_WATER_T", Metric: MetricWaterTemperature, Unit: UnitCelsius},
		{Type: "C", Name: "DEWP", Metric: MetricDewPoint, Unit: UnitCelsius},
		{Type: "C", Name: "DP", Metric: MetricDewPoint, Unit: UnitCelsius},
		{Type: "H", Name: "RH", Metric: MetricAirHumidity, Unit: UnitPercent},
		{Type: "P", Name: "PRESS", XDRUnit: "B", Metric: MetricAirPressure, Unit: UnitHPa, Scale: 1000},
		{Type: "P", Name: "BARO", XDRUnit: "B", Metric: MetricAirPressure, Unit: UnitHPa, Scale: 1000},
		{Type: "P", Name: "Barometer", XDRUnit: "B", Metric: MetricAirPressure, Unit: UnitHPa, Scale: 1000},
		{Type: "P", Name: "ENV_ATMOS_P", XDRUnit: "P", Metric: MetricAirPressure, Unit: UnitHPa, Scale: 0.01},
	}
}

// SupportedSentences returns the sentence formatters this driver maps to
// readings.
func SupportedSentences() []string {
	return []string{"DBS", "DBT", "DPT", "GGA", "HDT", "MDA", "MTA", "MTW", "MWD", "MWH", "MWV", "PNORW", "RMC", "VHW", "XDR", "ZDA"}
}

// Normalize fills defaults and puts names in their canonical case.
func (c *Config) Normalize() {
	for i, s := range c.Sentences {
		c.Sentences[i] = strings.ToUpper(strings.TrimSpace(s))
	}
	switch strings.ToLower(strings.TrimSpace(c.MWVReference)) {
	case "":
		c.MWVReference = MWVBoth
	case "t", "true":
		c.MWVReference = MWVTrue
	case "r", "relative":
		c.MWVReference = MWVRelative
	case "both":
		c.MWVReference = MWVBoth
	}
	if c.XDR == nil {
		c.XDR = DefaultXDR()
	}
	for i := range c.XDR {
		x := &c.XDR[i]
		x.Type = strings.ToUpper(strings.TrimSpace(x.Type))
		x.Name = strings.TrimSpace(x.Name)
		x.XDRUnit = strings.TrimSpace(x.XDRUnit)
		if x.Scale == 0 {
			x.Scale = 1
		}
	}
	if c.MaxLine == 0 {
		c.MaxLine = DefaultMaxLine
	}
}

// Check reports what is wrong with a normalized config, as field name →
// message pairs for the caller to place.
func (c *Config) Check() map[string]string {
	bad := map[string]string{}
	supported := SupportedSentences()
	for _, s := range c.Sentences {
		if !slices.Contains(supported, s) {
			bad["sentences"] = fmt.Sprintf("%q is not one of %s", s, strings.Join(supported, ", "))
			break
		}
	}
	switch c.MWVReference {
	case MWVTrue, MWVRelative, MWVBoth:
	default:
		bad["mwv_reference"] = fmt.Sprintf("%q is not T, R or both", c.MWVReference)
	}
	seen := map[string]int{}
	for i, x := range c.XDR {
		for k, msg := range x.check() {
			bad[fmt.Sprintf("xdr[%d].%s", i, k)] = msg
		}
		key := x.Type + "," + strings.ToUpper(x.Name) + "," + x.XDRUnit
		if j, dup := seen[key]; dup {
			bad[fmt.Sprintf("xdr[%d]", i)] = fmt.Sprintf("same transducer as xdr[%d]", j)
		}
		seen[key] = i
	}
	for _, m := range c.Metrics {
		if err := telemetry.CheckName("metric", m); err != nil {
			bad["metrics"] = err.Error()
			break
		}
	}
	if c.MaxLine < minMaxLine || c.MaxLine > maxMaxLine {
		bad["max_line"] = fmt.Sprintf("%d is not between %d and %d", c.MaxLine, minMaxLine, maxMaxLine)
	}
	if math.IsNaN(c.TransducerDepth) || c.TransducerDepth < 0 || c.TransducerDepth > 100 {
		bad["transducer_depth"] = "must be between 0 and 100 metres"
	}
	return bad
}

// xdrTypes are the transducer type letters of NMEA 0183 XDR.
const xdrTypes = "ABCDFGHILNPRSTUV"

func (x *XDRMap) check() map[string]string {
	bad := map[string]string{}
	if len(x.Type) != 1 || !strings.Contains(xdrTypes, x.Type) {
		bad["type"] = fmt.Sprintf("%q is not one transducer type letter of %s", x.Type, xdrTypes)
	}
	if len(x.XDRUnit) > 1 {
		bad["xdr_unit"] = fmt.Sprintf("%q is not one unit letter", x.XDRUnit)
	}
	if err := telemetry.CheckName("metric", x.Metric); err != nil {
		bad["metric"] = err.Error()
	}
	if len(x.Unit) > telemetry.MaxUnitLen || strings.ContainsAny(x.Unit, "\"\\\r\n\t") {
		bad["unit"] = fmt.Sprintf("%q is not a short printable unit", x.Unit)
	}
	if math.IsNaN(x.Scale) || math.IsInf(x.Scale, 0) {
		bad["scale"] = "must be a finite number"
	}
	if math.IsNaN(x.Offset) || math.IsInf(x.Offset, 0) {
		bad["offset"] = "must be a finite number"
	}
	return bad
}
