package influx

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// FuzzReadingLine: every reading that passes validation is either refused
// by the encoder (reported, never half-written) or reads back through an
// independent line-protocol parser exactly: measurement, tags, value,
// quality, clock and time.
func FuzzReadingLine(f *testing.F) {
	f.Add("farm-north", "north", "soil-1", "soil_moisture", "%", 31.5, int64(1_700_000_000_123_456_789), uint8(0), uint8(1))
	f.Add("gw", "", "do 1", "dissolved,oxygen", "mg/L", math.NaN(), int64(-1), uint8(2), uint8(0))
	f.Add("gw", "site=a", `dev\`, "m", "µS/cm", 1e300, int64(math.MaxInt64), uint8(1), uint8(5))
	f.Fuzz(func(t *testing.T, gw, site, dev, metric, unit string, v float64, ns int64, q, clock uint8) {
		r := telemetry.Reading{Device: dev, Metric: metric, Unit: unit, Value: v, Time: time.Unix(0, ns),
			Quality: telemetry.Quality(q % 3), Clock: telemetry.ClockQuality(clock % 6)}
		b := &telemetry.Batch{Gateway: gw, Site: site, Stream: "s", FirstSeq: 1, Readings: []telemetry.Reading{r}}
		if r.Time.IsZero() || b.Validate() != nil {
			return
		}
		var enc lineprotocol.Encoder
		enc.SetPrecision(lineprotocol.Nanosecond)
		stored := time.Unix(0, ns).Add(time.Second)
		appendReading(&enc, gw, site, &r, stored)
		if enc.Err() != nil {
			if len(enc.Bytes()) != 0 {
				t.Fatalf("refused reading left %q", enc.Bytes())
			}
			return
		}
		dec := lineprotocol.NewDecoderWithBytes(enc.Bytes())
		if !dec.Next() {
			t.Fatalf("no line in %q", enc.Bytes())
		}
		m, err := dec.Measurement()
		if err != nil || string(m) != metric {
			t.Fatalf("measurement %q, %v; want %q (line %q)", m, err, metric, enc.Bytes())
		}
		tags := map[string]string{}
		for {
			k, val, err := dec.NextTag()
			if err != nil {
				t.Fatalf("tag: %v (line %q)", err, enc.Bytes())
			}
			if k == nil {
				break
			}
			tags[string(k)] = string(val)
		}
		want := map[string]string{"gateway": gw, "device": dev}
		if site != "" {
			want["site"] = site
		}
		if unit != "" {
			want["unit"] = unit
		}
		if len(tags) != len(want) {
			t.Fatalf("tags %v, want %v", tags, want)
		}
		for k, v := range want {
			if tags[k] != v {
				t.Fatalf("tag %s = %q, want %q", k, tags[k], v)
			}
		}
		fields := map[string]lineprotocol.Value{}
		for {
			k, val, err := dec.NextField()
			if err != nil {
				t.Fatalf("field: %v (line %q)", err, enc.Bytes())
			}
			if k == nil {
				break
			}
			fields[string(k)] = val
		}
		if fv, ok := fields["value"]; ok != (!math.IsNaN(v) && !math.IsInf(v, 0)) || (ok && fv.FloatV() != v) {
			t.Fatalf("value field %v (present %v), want %v", fv, ok, v)
		}
		if fields["quality"].StringV() != r.Quality.String() || fields["clock"].StringV() != r.Clock.String() {
			t.Fatalf("quality %v clock %v, want %v %v", fields["quality"], fields["clock"], r.Quality, r.Clock)
		}
		if d := fields["delay"].FloatV(); d != 1 {
			t.Fatalf("delay %v, want 1", d)
		}
		at, err := dec.Time(lineprotocol.Nanosecond, time.Time{})
		if err != nil || !at.Equal(r.Time) {
			t.Fatalf("time %v, %v; want %v", at, err, r.Time)
		}
		if dec.Next() {
			t.Fatalf("more than one line in %q", enc.Bytes())
		}
		if !bytes.HasSuffix(enc.Bytes(), []byte("\n")) {
			t.Fatalf("line %q does not end", enc.Bytes())
		}
	})
}
