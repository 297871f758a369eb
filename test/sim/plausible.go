package sim

import (
	"math"
	"time"
)

// Plausible returns a realistic value of metric (in unit) at now for probe
// number probe, from the farm model, and false for a metric it does not
// know. Values follow the day: light and radiation peak at noon, wind picks
// up in the afternoon, rain accumulates slowly.
func (e *Environment) Plausible(metric, unit string, probe int, now time.Time) (float64, bool) {
	h := hourOfDay(now)
	day := math.Max(0, math.Sin(math.Pi*(h-6)/12)) // 0 at night, 1 at noon
	n := func(series string, bucket time.Duration) float64 { return e.noise(series, now, bucket) }
	switch metric {
	case "air_temperature":
		return e.AirTemperature(now), true
	case "air_humidity":
		return e.AirHumidity(now), true
	case "soil_moisture":
		return e.SoilMoisture(now, probe), true
	case "soil_temperature":
		return e.SoilTemperature(now, probe), true
	case "soil_ec":
		return e.SoilEC(now, probe), true
	case "soil_ph":
		return 6.6 + 0.05*float64(probe%3) + 0.02*n("ph", time.Minute), true
	case "soil_nitrogen":
		return 85 + 10*float64(probe%3) + 2*n("n", time.Minute), true
	case "soil_phosphorus":
		return 32 + 4*float64(probe%3) + n("p", time.Minute), true
	case "soil_potassium":
		return 165 + 12*float64(probe%3) + 3*n("k", time.Minute), true
	case "soil_salinity", "soil_tds":
		return 0.5*e.SoilEC(now, probe) + n("tds", time.Minute), true
	case "air_pressure":
		p := 101.3 + 0.4*math.Sin(2*math.Pi*float64(now.Unix()%(3*86400))/(3*86400)) + 0.02*n("pres", time.Minute)
		switch unit {
		case "hPa":
			return 10 * p, true
		case "Pa":
			return 1000 * p, true
		}
		return p, true
	case "illuminance":
		return 60000*day*(0.8+0.2*n("lux", time.Minute)) + 5, true
	case "solar_radiation":
		return 750 * day * (0.85 + 0.15*n("rad", time.Minute)), true
	case "solar_radiation_total":
		return 800 * day, true
	case "wind_speed":
		return math.Max(0, 2.5+2*day+0.8*n("wind", 10*time.Second)), true
	case "wind_force":
		s, _ := e.Plausible("wind_speed", "m/s", probe, now)
		return math.Floor(math.Pow(s/0.836, 2.0/3)), true
	case "wind_direction":
		return math.Mod(230+40*math.Sin(2*math.Pi*h/24)+15*n("dir", 30*time.Second)+360, 360), true
	case "rainfall":
		return math.Floor(float64(now.Unix()%86400)/3600) * 0.2, true
	case "noise":
		return 42 + 8*day + 2*n("db", 10*time.Second), true
	case "pm2_5":
		return 28 + 10*n("pm25", time.Minute), true
	case "pm10":
		return 55 + 15*n("pm10", time.Minute), true
	case "co2":
		return 430 + 60*(1-day) + 10*n("co2", time.Minute), true
	case "water_temperature":
		return 14.5 + 1.5*day + 0.1*n("wt", time.Minute), true
	case "dissolved_oxygen":
		return 8.1 + 0.8*day + 0.05*n("do", time.Minute), true
	case "do_saturation":
		return 92 + 8*day + 0.5*n("dos", time.Minute), true
	case "water_ph":
		return 7.4 + 0.2*day + 0.02*n("wph", time.Minute), true
	case "ammonia_nitrogen":
		return 0.32 + 0.05*n("nh4", time.Minute), true
	case "potassium_ion":
		return 3.8 + 0.2*n("kion", time.Minute), true
	case "turbidity":
		return 6 + 2*n("ntu", time.Minute), true
	}
	return 0, false
}
