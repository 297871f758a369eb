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
// (reported, nothing written) or reads back through an independent
// line-protocol parser exactly: measurement, tags, value, quality, clock
// and time. The line is lineprotocol.Encoder's byte for byte, refused when
// the Encoder refuses it, and the same when its series key is cached.
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
		var ref lineprotocol.Encoder
		ref.SetPrecision(lineprotocol.Nanosecond)
		stored := time.Unix(0, ns).Add(time.Second)
		encoderLine(&ref, gw, site, &r, stored)
		w := newLineWriter()
		err := w.appendReading(gw, site, &r, stored)
		if (err != nil) != (ref.Err() != nil) {
			t.Fatalf("refused: %v; the Encoder: %v", err, ref.Err())
		}
		if err != nil {
			if len(w.Bytes()) != 0 {
				t.Fatalf("refused reading left %q", w.Bytes())
			}
			return
		}
		if !bytes.Equal(w.Bytes(), ref.Bytes()) {
			t.Fatalf("line %q; the Encoder's %q", w.Bytes(), ref.Bytes())
		}
		first := string(w.Bytes())
		if err := w.appendReading(gw, site, &r, stored); err != nil || string(w.Bytes()) != first+first {
			t.Fatalf("with the key cached: %q, %v; want the line twice", w.Bytes(), err)
		}
		line := []byte(first)
		dec := lineprotocol.NewDecoderWithBytes(line)
		if !dec.Next() {
			t.Fatalf("no line in %q", line)
		}
		m, err := dec.Measurement()
		if err != nil || string(m) != metric {
			t.Fatalf("measurement %q, %v; want %q (line %q)", m, err, metric, line)
		}
		tags := map[string]string{}
		for {
			k, val, err := dec.NextTag()
			if err != nil {
				t.Fatalf("tag: %v (line %q)", err, line)
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
				t.Fatalf("field: %v (line %q)", err, line)
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
			t.Fatalf("more than one line in %q", line)
		}
		if !bytes.HasSuffix(line, []byte("\n")) {
			t.Fatalf("line %q does not end", line)
		}
	})
}

// encoderLine is the reference: a reading's line as lineprotocol.Encoder
// makes it, every name checked and escaped (the store's way before
// lineWriter).
func encoderLine(enc *lineprotocol.Encoder, gateway, site string, r *telemetry.Reading, stored time.Time) {
	enc.StartLine(r.Metric)
	enc.AddTag("device", r.Device)
	enc.AddTag("gateway", gateway)
	if site != "" {
		enc.AddTag("site", site)
	}
	if r.Unit != "" {
		enc.AddTag("unit", r.Unit)
	}
	if v, ok := lineprotocol.FloatValue(r.Value); ok {
		enc.AddField("value", v)
	}
	quality, _ := lineprotocol.StringValue(r.Quality.String())
	clock, _ := lineprotocol.StringValue(r.Clock.String())
	enc.AddField("quality", quality)
	enc.AddField("clock", clock)
	if !stored.IsZero() {
		d, _ := lineprotocol.FloatValue(stored.Sub(r.Time).Seconds())
		enc.AddField("delay", d)
	}
	enc.EndLine(r.Time)
}
