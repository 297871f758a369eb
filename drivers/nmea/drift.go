package nmea

import (
	"fmt"
	"math"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Mooring is where a buoy is anchored and how far it may swing on its
// chain. It belongs to the installed buoy, not to the device model, so it
// is not part of Config.
type Mooring struct {
	Lat     float64 `yaml:"lat"`      // anchor latitude, ° WGS84
	Lon     float64 `yaml:"lon"`      // anchor longitude, ° WGS84
	RadiusM float64 `yaml:"radius_m"` // watch circle radius in metres
	// ReturnFraction is the hysteresis: a drifting buoy is back only once
	// closer than ReturnFraction × RadiusM. Default 0.9.
	ReturnFraction float64 `yaml:"return_fraction"`
	// Confirm is how many fixes in a row must agree before the state
	// changes, against single wild fixes. Default 1.
	Confirm int `yaml:"confirm"`
}

// Drift states, in the events' "state" attribute.
const (
	StateDrifting = "drifting"
	StateReturned = "returned"
)

// Normalize fills defaults.
func (m *Mooring) Normalize() {
	if m.ReturnFraction == 0 {
		m.ReturnFraction = 0.9
	}
	if m.Confirm == 0 {
		m.Confirm = 1
	}
}

// Check reports what is wrong with a normalized mooring, as field name →
// message pairs.
func (m *Mooring) Check() map[string]string {
	bad := map[string]string{}
	if !(m.Lat >= -90 && m.Lat <= 90) {
		bad["lat"] = "must be between -90 and 90"
	}
	if !(m.Lon >= -180 && m.Lon <= 180) {
		bad["lon"] = "must be between -180 and 180"
	}
	if !(m.RadiusM > 0 && m.RadiusM <= 100000) {
		bad["radius_m"] = "must be more than 0 and at most 100000 metres"
	}
	if !(m.ReturnFraction > 0 && m.ReturnFraction <= 1) {
		bad["return_fraction"] = fmt.Sprintf("%v is not in (0, 1]", m.ReturnFraction)
	}
	if m.Confirm < 1 || m.Confirm > 100 {
		bad["confirm"] = fmt.Sprintf("%d is not between 1 and 100", m.Confirm)
	}
	return bad
}

// Drift watches a buoy's fixes against its mooring. It starts "at its
// mooring"; the first time Confirm fixes in a row are farther than RadiusM
// it reports "drifting", and once drifting, the first time Confirm fixes in
// a row are closer than ReturnFraction × RadiusM it reports "returned".
// Fixes between the two distances change nothing.
type Drift struct {
	m        Mooring
	drifting bool
	run      int // fixes in a row calling for the other state
}

// NewDrift returns a watch of m, normalizing a copy of it.
func NewDrift(m Mooring) *Drift {
	m.Normalize()
	return &Drift{m: m}
}

// Drifting reports whether the buoy is currently considered adrift.
func (d *Drift) Drifting() bool { return d.drifting }

// Update takes a fix at time at and returns an EventDrift when the state
// changes. The caller sets the event's Device and Clock.
func (d *Drift) Update(lat, lon float64, at time.Time) (telemetry.Event, bool) {
	dist := Haversine(d.m.Lat, d.m.Lon, lat, lon)
	var other bool
	if d.drifting {
		other = dist < d.m.ReturnFraction*d.m.RadiusM
	} else {
		other = dist > d.m.RadiusM
	}
	if !other {
		d.run = 0
		return telemetry.Event{}, false
	}
	d.run++
	if d.run < d.m.Confirm {
		return telemetry.Event{}, false
	}
	d.run = 0
	d.drifting = !d.drifting
	state := StateReturned
	if d.drifting {
		state = StateDrifting
	}
	return telemetry.Event{
		Kind:  telemetry.EventDrift,
		Time:  at,
		Attrs: map[string]string{"state": state},
		Values: map[string]float64{
			"lat":        lat,
			"lon":        lon,
			"distance_m": math.Round(dist*10) / 10,
			"radius_m":   d.m.RadiusM,
			// The mooring itself, so the cloud can draw the watch circle
			// (added after the first release: readers ignore unknown values).
			"anchor_lat": d.m.Lat,
			"anchor_lon": d.m.Lon,
		},
	}, true
}

// earthRadius is the mean Earth radius in metres (IUGG).
const earthRadius = 6371008.8

// Haversine returns the great-circle distance in metres between two points
// given in degrees.
func Haversine(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadius * math.Asin(math.Sqrt(math.Min(1, a)))
}
