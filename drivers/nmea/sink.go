package nmea

import (
	"math"
	"time"

	gonmea "github.com/adrianmo/go-nmea"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// sink collects the readings of one sentence.
type sink struct {
	d     *Decoder
	out   *stream.Output
	now   time.Time
	clk   telemetry.ClockQuality
	start int // len(out.Readings) before this sentence

	added, filtered int
	broken          bool // a value was not a finite number

	// quality is the quality of this sentence's readings when in range.
	quality telemetry.Quality

	fix      bool // the sentence carried a valid position
	watch    bool // … good enough for the mooring watch
	lat, lon float64
	fixUTC   gonmea.Time // … taken at this UTC
}

// put adds a reading of metric, unless the allow-list drops it.
func (k *sink) put(metric string, v float64, unit string) {
	k.putQ(metric, v, unit, k.quality)
}

// putQ is put with a given quality for an in-range value.
func (k *sink) putQ(metric string, v float64, unit string, q telemetry.Quality) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		k.broken = true
		return
	}
	if k.d.metrics != nil && !k.d.metrics[metric] {
		k.filtered++
		return
	}
	if !plausible(metric, v) {
		q = telemetry.Bad
	}
	k.out.Readings = append(k.out.Readings, telemetry.Reading{
		Device:  k.d.device,
		Metric:  metric,
		Value:   v,
		Unit:    unit,
		Time:    k.now,
		Quality: q,
		Clock:   k.clk,
	})
	k.added++
}

// raw is a sentence's fields, trimmed; emptiness is read from here because
// go-nmea returns 0 for an empty number.
type raw []string

// has reports whether field i is present and not empty.
func (r raw) has(i int) bool { return i < len(r) && r[i] != "" }
