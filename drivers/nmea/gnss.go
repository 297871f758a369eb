package nmea

import (
	"time"

	gonmea "github.com/adrianmo/go-nmea"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// mapGGA maps a fix: quality and satellites always (quality 0 is news: the
// receiver has no fix), the position only with a fix. Quality 6 (dead
// reckoning) gives an Uncertain position that the mooring watch ignores.
func mapGGA(m gonmea.GGA, k *sink) {
	f := raw(m.Fields)
	q := -1
	if f.has(5) {
		q = int(m.FixQuality[0] - '0') // go-nmea accepts only 0–6
		k.put(MetricGPSQuality, float64(q), UnitNone)
	}
	if f.has(6) {
		k.put(MetricGPSSatellites, float64(m.NumSatellites), UnitNone)
	}
	if q < 1 || !f.has(1) || !f.has(3) {
		return
	}
	pq := telemetry.Good
	if q == 6 {
		pq = telemetry.Uncertain
	}
	k.position(m.Time, m.Latitude, m.Longitude, pq, q != 6)
}

// position reports a fix, unless it is the one just reported: a receiver
// sends each fix in both GGA and RMC, with the same UTC and position, and
// one fix is one pair of readings and one step of the mooring watch.
func (k *sink) position(utc gonmea.Time, lat, lon float64, q telemetry.Quality, watch bool) {
	d := k.d
	if utc.Valid && utc == d.fixUTC && d.posOK && lat == d.lat && lon == d.lon {
		return
	}
	k.putQ(MetricLatitude, lat, UnitDegrees, q)
	k.putQ(MetricLongitude, lon, UnitDegrees, q)
	k.fix, k.watch, k.lat, k.lon = true, watch, lat, lon
	k.fixUTC = utc
}

// mapRMC maps a fix with status A (and a mode other than N, not valid):
// position, speed and course over ground. Status V gives nothing.
func mapRMC(m gonmea.RMC, k *sink) string {
	f := raw(m.Fields)
	if m.Validity != gonmea.ValidRMC || m.FFAMode == "N" {
		if !f.has(1) && !f.has(2) && !f.has(6) {
			return KindEmpty
		}
		return KindInvalidStatus
	}
	if f.has(2) && f.has(4) {
		k.position(m.Time, m.Latitude, m.Longitude, k.quality, true)
	}
	if f.has(6) {
		k.put(MetricSpeedOverGround, conv(m.Speed, knot), UnitMS)
	}
	if f.has(7) {
		k.put(MetricCourseOverGround, m.Course, UnitDegrees)
	}
	return ""
}

// mapZDA gives clock_offset, the UTC of the ZDA sentence minus the arrival
// time, in seconds. It needs the full date; a two-digit year (some
// chart plotters) is taken as 20yy. The zone fields are ignored: ZDA time
// is UTC.
func mapZDA(m gonmea.ZDA, k *sink) string {
	f := raw(m.Fields)
	if !f.has(0) || !f.has(1) || !f.has(2) || !f.has(3) {
		return KindEmpty
	}
	y := int(m.Year)
	if y < 100 {
		y += 2000
	}
	t := m.Time
	day := time.Date(y, time.Month(m.Month), int(m.Day), 0, 0, 0, 0, time.UTC)
	if !t.Valid || y < 1980 || y > 2200 || m.Month < 1 || m.Month > 12 || day.Day() != int(m.Day) ||
		t.Hour > 23 || t.Minute > 59 || t.Second > 60 {
		return KindMalformed // 31 February, 25 o'clock
	}
	// A leap second (:60) counts as the first second of the next minute.
	utc := day.Add(time.Duration(t.Hour)*time.Hour + time.Duration(t.Minute)*time.Minute +
		time.Duration(t.Second)*time.Second + time.Duration(t.Millisecond)*time.Millisecond)
	k.put(MetricClockOffset, conv(utc.Sub(k.now).Seconds(), 1), UnitSecond)
	return ""
}
