package nmea

import (
	"strings"

	gonmea "github.com/adrianmo/go-nmea"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// mapSentence turns a parsed sentence into readings in k. It returns a
// refusal kind when the sentence as a whole must not give readings ("" when
// it may); the caller classifies the rest from k.
func (d *Decoder) mapSentence(s gonmea.Sentence, k *sink) string {
	switch m := s.(type) {
	case gonmea.MDA:
		mapMDA(m, k)
	case windMWV:
		return d.mapMWV(m, k)
	case windMWD:
		mapMWD(m, k)
	case gonmea.MTW:
		if raw(m.Fields).has(0) {
			k.put(MetricWaterTemperature, m.Temperature, UnitCelsius)
		}
	case gonmea.MTA:
		if raw(m.Fields).has(0) {
			k.put(MetricAirTemperature, m.Temperature, UnitCelsius)
		}
	case gonmea.XDR:
		return d.mapXDR(m, k)
	case gonmea.VHW:
		mapVHW(m, k)
	case gonmea.HDT:
		if raw(m.Fields).has(0) {
			k.put(MetricHeading, m.Heading, UnitDegrees)
		}
	case gonmea.DPT:
		d.mapDPT(m, k)
	case gonmea.DBT:
		d.mapDBT(m, k)
	case gonmea.DBS:
		mapDBS(m, k)
	case gonmea.GGA:
		mapGGA(m, k)
	case gonmea.RMC:
		return mapRMC(m, k)
	case gonmea.ZDA:
		return mapZDA(m, k)
	case waveMWH:
		switch {
		case m.HasMetres:
			k.put(MetricWaveHeight, m.Metres, UnitMetre)
		case m.HasFeet:
			k.put(MetricWaveHeight, conv(m.Feet, foot), UnitMetre)
		}
	case wavePNORW:
		mapPNORW(m, k)
	default:
		return KindUnknownSentence
	}
	return ""
}

func mapMDA(m gonmea.MDA, k *sink) {
	f := raw(m.Fields)
	switch {
	case f.has(2):
		k.put(MetricAirPressure, conv(m.PressureBar, barInHPa), UnitHPa)
	case f.has(0):
		k.put(MetricAirPressure, conv(m.PressureInch, inHg), UnitHPa)
	}
	if f.has(4) {
		k.put(MetricAirTemperature, m.AirTemp, UnitCelsius)
	}
	if f.has(6) { // some stations leave water temperature blank
		k.put(MetricWaterTemperature, m.WaterTemp, UnitCelsius)
	}
	if f.has(8) {
		k.put(MetricAirHumidity, m.RelativeHum, UnitPercent)
	}
	if f.has(10) {
		k.put(MetricDewPoint, m.DewPoint, UnitCelsius)
	}
	if f.has(12) {
		k.put(MetricWindDirection, m.WindDirectionTrue, UnitDegrees)
	}
	switch {
	case f.has(18):
		k.put(MetricWindSpeed, m.WindSpeedMeters, UnitMS)
	case f.has(16):
		k.put(MetricWindSpeed, conv(m.WindSpeedKnots, knot), UnitMS)
	}
}

// mapMWV maps wind speed and angle. Status V gives nothing; a talker that
// sends no status field (NMEA 0183 before 2.0) is taken as valid.
func (d *Decoder) mapMWV(m windMWV, k *sink) string {
	f := raw(m.Fields)
	if m.Status == "V" {
		return KindInvalidStatus
	}
	if !f.has(0) && !f.has(2) {
		return KindEmpty
	}
	var factor float64
	if f.has(2) {
		switch m.Unit {
		case "K":
			factor = kmh
		case "M":
			factor = 1
		case "N":
			factor = knot
		case "S":
			factor = mph
		default:
			return KindMalformed // a speed without its unit
		}
	}
	dirMetric, speedMetric := MetricWindDirection, MetricWindSpeed
	switch m.Reference {
	case "G": // Gill: gust speed; its angle is not reported
		if f.has(2) {
			k.put(MetricWindGust, conv(m.Speed, factor), UnitMS)
		}
		return ""
	case "T":
		if d.cfg.MWVReference == MWVRelative {
			return KindIgnored
		}
	case "R":
		if d.cfg.MWVReference == MWVTrue {
			return KindIgnored
		}
		dirMetric, speedMetric = MetricWindDirectionRelative, MetricWindSpeedRelative
	default:
		return KindMalformed // values without a reference
	}
	if f.has(0) {
		k.put(dirMetric, m.Angle, UnitDegrees)
	}
	if f.has(2) {
		k.put(speedMetric, conv(m.Speed, factor), UnitMS)
	}
	return ""
}

func mapMWD(m windMWD, k *sink) {
	if m.HasDirTrue {
		k.put(MetricWindDirection, m.DirTrue, UnitDegrees)
	}
	switch {
	case m.HasSpeedMS:
		k.put(MetricWindSpeed, m.SpeedMS, UnitMS)
	case m.HasSpeedKnots:
		k.put(MetricWindSpeed, conv(m.SpeedKnots, knot), UnitMS)
	}
}

// mapXDR maps the measurements that have an entry in Config.XDR.
func (d *Decoder) mapXDR(m gonmea.XDR, k *sink) string {
	f := raw(m.Fields)
	mapped := false
	for i, x := range m.Measurements {
		mp, ok := d.xdrMap(x)
		if !ok {
			continue
		}
		mapped = true
		if f.has(4*i + 1) {
			k.put(mp.Metric, x.Value*mp.Scale+mp.Offset, mp.Unit)
		}
	}
	if !mapped {
		return KindUnmapped
	}
	return ""
}

func (d *Decoder) xdrMap(x gonmea.XDRMeasurement) (XDRMap, bool) {
	for _, mp := range d.cfg.XDR {
		if mp.Type == x.TransducerType && strings.EqualFold(mp.Name, x.TransducerName) &&
			(mp.XDRUnit == "" || mp.XDRUnit == x.Unit) {
			return mp, true
		}
	}
	return XDRMap{}, false
}

func mapVHW(m gonmea.VHW, k *sink) {
	f := raw(m.Fields)
	if f.has(0) {
		k.put(MetricHeading, m.TrueHeading, UnitDegrees)
	}
	switch {
	case f.has(4):
		k.put(MetricWaterSpeed, conv(m.SpeedThroughWaterKnots, knot), UnitMS)
	case f.has(6):
		k.put(MetricWaterSpeed, conv(m.SpeedThroughWaterKPH, kmh), UnitMS)
	}
}

// mapDPT gives the depth below the surface: depth + offset when the offset
// is positive (transducer to waterline), else depth + TransducerDepth.
func (d *Decoder) mapDPT(m gonmea.DPT, k *sink) {
	f := raw(m.Fields)
	if !f.has(0) {
		return
	}
	off := d.cfg.TransducerDepth
	if f.has(1) && m.Offset > 0 {
		off = m.Offset
	}
	k.put(MetricWaterDepth, conv(m.Depth+off, 1), UnitMetre)
}

// mapDBT gives depth below transducer + TransducerDepth, from the metres
// field, else feet, else fathoms.
func (d *Decoder) mapDBT(m gonmea.DBT, k *sink) {
	if v, ok := depth(raw(m.Fields), m.DepthFeet, m.DepthMeters, m.DepthFathoms); ok {
		k.put(MetricWaterDepth, conv(v+d.cfg.TransducerDepth, 1), UnitMetre)
	}
}

// mapDBS gives depth below surface as sent.
func mapDBS(m gonmea.DBS, k *sink) {
	if v, ok := depth(raw(m.Fields), m.DepthFeet, m.DepthMeters, m.DepthFathoms); ok {
		k.put(MetricWaterDepth, v, UnitMetre)
	}
}

// depth picks metres, else feet, else fathoms from a DBT/DBS triplet.
func depth(f raw, ft, m, fa float64) (float64, bool) {
	switch {
	case f.has(2):
		return m, true
	case f.has(0):
		return conv(ft, foot), true
	case f.has(4):
		return conv(fa, fathom), true
	}
	return 0, false
}

// mapPNORW maps Nortek wave parameters; −9 is invalid and gives nothing. A
// non-zero error code makes the readings Uncertain.
func mapPNORW(m wavePNORW, k *sink) {
	if ec := strings.Trim(m.ErrorCode, "0"); ec != "" {
		k.quality = telemetry.Uncertain
	}
	put := func(i int, metric, unit string) bool {
		v, ok := m.present(i)
		if ok {
			k.put(metric, v, unit)
		}
		return ok
	}
	put(0, MetricWaveHeight, UnitMetre)
	put(1, MetricWaveHeightMax, UnitMetre)
	put(2, MetricWavePeriod, UnitSecond)
	put(3, MetricWavePeriodPeak, UnitSecond)
	if !put(4, MetricWaveDirection, UnitDegrees) {
		put(5, MetricWaveDirection, UnitDegrees)
	}
}
