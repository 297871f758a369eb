package ndbc

import "math"

// column describes one data column of a standard meteorological file.
type column struct {
	name   string             // header name, e.g. WSPD
	metric string             // reading name
	unit   string             // reading unit
	units  map[string]float64 // accepted header units → factor to the reading unit
	lo, hi float64            // plausible range of the reading
}

// columns returns the data columns of the realtime2 standard
// meteorological format, in file order.
func columns() []column {
	one := func(u string) map[string]float64 { return map[string]float64{u: 1} }
	return []column{
		{"WDIR", "wind_direction", "°", one("degT"), 0, 360},
		{"WSPD", "wind_speed", "m/s", one("m/s"), 0, 120},
		{"GST", "wind_gust", "m/s", one("m/s"), 0, 150},
		{"WVHT", "wave_height", "m", one("m"), 0, 40},
		{"DPD", "wave_period_peak", "s", one("sec"), 0, 40},
		{"APD", "wave_period", "s", one("sec"), 0, 40},
		{"MWD", "wave_direction", "°", one("degT"), 0, 360},
		{"PRES", "air_pressure", "hPa", one("hPa"), 800, 1100},
		{"ATMP", "air_temperature", "°C", one("degC"), -90, 70},
		{"WTMP", "water_temperature", "°C", one("degC"), -5, 45},
		{"DEWP", "dew_point", "°C", one("degC"), -90, 70},
		{"VIS", "visibility", "nmi", map[string]float64{"nmi": 1, "mi": 1609.344 / 1852}, 0, 100},
		{"PTDY", "pressure_tendency", "hPa", one("hPa"), -50, 50},
		{"TIDE", "tide", "m", map[string]float64{"ft": 0.3048}, -20, 20},
	}
}

// timeColumns returns the leading time columns' names and units.
func timeColumns() [5][2]string {
	return [5][2]string{{"YY", "yr"}, {"MM", "mo"}, {"DD", "dy"}, {"hh", "hr"}, {"mm", "mn"}}
}

// scale applies a unit factor, rounding to 1e-6 so that 1.0 ft is 0.3048 m
// and not 0.30479999999999996.
func scale(v, factor float64) float64 {
	if factor == 1 {
		return v
	}
	return math.Round(v*factor*1e6) / 1e6
}

// parseDecimal parses an optionally signed plain decimal number ("1016.5",
// "+0.3", "-12", ".5") without allocating; anything else (exponents, NaN,
// Inf, hex, more than 15 significant or fraction digits) is refused. The
// result is correctly rounded, as an integer below 2^53 divided by an exact
// power of ten.
func parseDecimal(b []byte) (float64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	var mant uint64
	sig, frac, seen := 0, -1, false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			seen = true
			if mant != 0 || c != '0' {
				sig++
			}
			mant = mant*10 + uint64(c-'0')
			if frac >= 0 {
				frac++
			}
			if sig > 15 || frac > 15 {
				return 0, false
			}
		case c == '.' && frac < 0:
			frac = 0
		default:
			return 0, false
		}
	}
	if !seen {
		return 0, false
	}
	v := float64(mant)
	if frac > 0 {
		v /= math.Pow10(frac)
	}
	if neg {
		v = -v
	}
	return v, true
}
