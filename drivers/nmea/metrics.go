package nmea

import "math"

// Metric names produced by this driver.
const (
	MetricWindSpeed             = "wind_speed"              // m/s, true wind (MWV T, MWD, MDA)
	MetricWindDirection         = "wind_direction"          // °, true wind, where it comes from
	MetricWindSpeedRelative     = "wind_speed_relative"     // m/s, MWV R
	MetricWindDirectionRelative = "wind_direction_relative" // °, MWV R, relative to the bow or north mark
	MetricWindGust              = "wind_gust"               // m/s, Gill MWV reference G
	MetricAirTemperature        = "air_temperature"         // °C
	MetricWaterTemperature      = "water_temperature"       // °C
	MetricAirPressure           = "air_pressure"            // hPa
	MetricAirHumidity           = "air_humidity"            // %
	MetricDewPoint              = "dew_point"               // °C
	MetricWaterDepth            = "water_depth"             // m below the surface (see package doc)
	MetricHeading               = "heading"                 // °, true
	MetricWaterSpeed            = "water_speed"             // m/s, through the water
	MetricWaveHeight            = "wave_height"             // m, significant (Hm0, MWH)
	MetricWaveHeightMax         = "wave_height_max"         // m
	MetricWavePeriod            = "wave_period"             // s, mean (Tm02)
	MetricWavePeriodPeak        = "wave_period_peak"        // s
	MetricWaveDirection         = "wave_direction"          // °, where the waves at the peak period come from
	MetricLatitude              = "latitude"                // °, WGS84, north positive
	MetricLongitude             = "longitude"               // °, WGS84, east positive
	MetricGPSQuality            = "gps_quality"             // GGA fix quality 0–8
	MetricGPSSatellites         = "gps_satellites"          // satellites in use
	MetricSpeedOverGround       = "speed_over_ground"       // m/s
	MetricCourseOverGround      = "course_over_ground"      // °, true
	MetricClockOffset           = "clock_offset"            // s, ZDA time minus arrival time
)

// Units of the readings.
const (
	UnitMS      = "m/s"
	UnitDegrees = "°"
	UnitCelsius = "°C"
	UnitHPa     = "hPa"
	UnitPercent = "%"
	UnitMetre   = "m"
	UnitSecond  = "s"
	UnitNone    = ""
)

// Unit conversion factors.
const (
	knot     = 1852.0 / 3600 // m/s
	kmh      = 1 / 3.6       // m/s
	mph      = 0.44704       // m/s
	foot     = 0.3048        // m
	fathom   = 1.8288        // m
	inHg     = 33.8639       // hPa
	barInHPa = 1000          // hPa
)

// conv multiplies a value by a unit factor and rounds to 1e-6, which no
// instrument resolves, so that 1.026 bar is 1026 hPa, not 1025.9999999999998.
func conv(v, factor float64) float64 {
	return math.Round(v*factor*1e6) / 1e6
}

// plausible reports whether v is a physically possible value of metric.
// Values outside are kept with quality Bad. Metrics not listed (XDR
// mappings to other names) are always plausible.
func plausible(metric string, v float64) bool {
	lo, hi := math.Inf(-1), math.Inf(1)
	switch metric {
	case MetricWindSpeed, MetricWindSpeedRelative, MetricWindGust:
		lo, hi = 0, 120
	case MetricWindDirection, MetricWindDirectionRelative, MetricHeading,
		MetricCourseOverGround, MetricWaveDirection:
		lo, hi = 0, 360
	case MetricAirTemperature, MetricDewPoint:
		lo, hi = -90, 70
	case MetricWaterTemperature:
		lo, hi = -5, 45
	case MetricAirPressure:
		lo, hi = 800, 1100
	case MetricAirHumidity:
		lo, hi = 0, 100
	case MetricWaterDepth:
		lo, hi = 0, 11000
	case MetricWaterSpeed, MetricSpeedOverGround:
		lo, hi = 0, 100
	case MetricWaveHeight, MetricWaveHeightMax:
		lo, hi = 0, 40
	case MetricWavePeriod, MetricWavePeriodPeak:
		lo, hi = 0, 40
	case MetricLatitude:
		lo, hi = -90, 90
	case MetricLongitude:
		lo, hi = -180, 180
	case MetricGPSQuality:
		lo, hi = 0, 8
	case MetricGPSSatellites:
		lo, hi = 0, 99
	}
	return v >= lo && v <= hi
}
