package sim

import (
	"hash/fnv"
	"math"
	"time"
)

// Environment is a deterministic model of a temperate farm in autumn:
// diurnal air temperature with humidity moving against it, soil that warms
// later and less than the air, and soil moisture that dries by day and is
// topped up by irrigation. The same seed and time give the same values.
type Environment struct {
	Seed int64
}

// hourOfDay is the local solar hour of t (UTC+8 here, as the demo farms are
// in north-east China).
func hourOfDay(t time.Time) float64 {
	t = t.UTC().Add(8 * time.Hour)
	return float64(t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600
}

// noise is deterministic jitter in [-1, 1] for one series in one time bucket.
func (e *Environment) noise(series string, t time.Time, bucket time.Duration) float64 {
	h := fnv.New64a()
	var b [16]byte
	n := t.UnixNano() / int64(bucket)
	for i := 0; i < 8; i++ {
		b[i] = byte(n >> (8 * i))
		b[8+i] = byte(e.Seed >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(series))
	return float64(h.Sum64()%20001)/10000 - 1
}

// AirTemperature in °C: 12 ± 8, coldest near 05:00, warmest near 15:00.
func (e *Environment) AirTemperature(t time.Time) float64 {
	h := hourOfDay(t)
	return 12 + 8*math.Sin(2*math.Pi*(h-9)/24) + 0.3*e.noise("air_t", t, 10*time.Second)
}

// AirHumidity in %: high at dawn, low in the afternoon.
func (e *Environment) AirHumidity(t time.Time) float64 {
	rh := 62 - 2.5*(e.AirTemperature(t)-12) + 1.0*e.noise("air_rh", t, 10*time.Second)
	return math.Max(12, math.Min(99, rh))
}

// SoilTemperature in °C at a probe's depth: damped and about three hours
// behind the air. probe varies the depth a little.
func (e *Environment) SoilTemperature(t time.Time, probe int) float64 {
	h := hourOfDay(t)
	damp := 0.35 - 0.05*float64(probe%3)
	return 11 + 8*damp*math.Sin(2*math.Pi*(h-12)/24) + 0.1*e.noise("soil_t", t, 30*time.Second)
}

// SoilMoisture in % (volumetric): a 36-hour irrigation cycle from about 38 %
// down to about 24 %, drying faster in the afternoon. probe offsets the
// phase, so the probes of one field disagree as real ones do.
func (e *Environment) SoilMoisture(t time.Time, probe int) float64 {
	const cycle = 36 * time.Hour
	phase := time.Duration(t.UnixNano()+int64(probe)*int64(5*time.Hour)) % cycle
	frac := float64(phase) / float64(cycle)
	m := 38 - 14*frac + 0.4*math.Sin(2*math.Pi*(hourOfDay(t)-15)/24)
	return m - 1.5*float64(probe%2) + 0.1*e.noise("soil_m", t, 30*time.Second)
}

// SoilEC in µS/cm: conductivity rises with water content.
func (e *Environment) SoilEC(t time.Time, probe int) float64 {
	return 180 + 22*e.SoilMoisture(t, probe) + 5*e.noise("soil_ec", t, 30*time.Second)
}
