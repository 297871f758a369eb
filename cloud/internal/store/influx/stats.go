package influx

import (
	"context"
	"fmt"
	"sort"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
)

// Stats implements store.Store: one query finds the gateway's series and
// the first reading of each, then one query per period answers every
// series at once, as nine results (Flux 0.65 in InfluxDB 1.8 cannot union
// or join them cheaply), merged here by series. Only the values of good
// readings are summarised, which needs the value and quality side by side
// (a pivot); the counts and delays need none.
func (s *Store) Stats(ctx context.Context, q store.StatsQuery) ([]store.SeriesStats, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	sel := fmt.Sprintf(`r.gateway == %s and r._measurement != %s and r._measurement != %s and r._measurement != %s`,
		quote(q.Gateway), quote(eventMeasurement), quote(commitMeasurement), quote(contextMeasurement))
	if q.Device != "" {
		sel += " and r.device == " + quote(q.Device)
	}
	if q.Metric != "" {
		sel += " and r._measurement == " + quote(q.Metric)
	}
	end := q.Bounds[len(q.Bounds)-1]
	type key struct{ dev, met, unit string }
	index := map[key]int{}
	var out []store.SeriesStats
	res, err := s.query.Query(ctx, fmt.Sprintf(`from(bucket: %s) |> range(start: 1970-01-01T00:00:00Z, stop: %s)
  |> filter(fn: (r) => %s and r._field == "quality" and r._time < %s) |> first()`,
		quote(s.bucket), fluxTime(end), sel, fluxTime(end)))
	if err != nil {
		return nil, fmt.Errorf("influxdb query: %w", err)
	}
	for res.Next() {
		rec := res.Record()
		k := key{met: rec.Measurement()}
		k.dev, _ = rec.ValueByKey("device").(string)
		k.unit, _ = rec.ValueByKey("unit").(string)
		t := rec.Time().UTC()
		if i, ok := index[k]; ok {
			if t.Before(out[i].First) {
				out[i].First = t
			}
			continue
		}
		index[k] = len(out)
		out = append(out, store.SeriesStats{Device: k.dev, Metric: k.met, Unit: k.unit, First: t,
			Periods: make([]store.PeriodStats, len(q.Bounds)-1)})
	}
	err = res.Err()
	res.Close()
	if err != nil {
		return nil, fmt.Errorf("influxdb query: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	for i := 0; i+1 < len(q.Bounds); i++ {
		from, to := q.Bounds[i], q.Bounds[i+1]
		parts := map[key]*store.PeriodStats{}
		flux := fmt.Sprintf(`data = from(bucket: %s) |> range(start: %s, stop: %s)
  |> filter(fn: (r) => %s and r._time < %s)
q = data |> filter(fn: (r) => r._field == "quality")
q |> count() |> yield(name: "received")
q |> filter(fn: (r) => r._value == "good") |> count() |> yield(name: "good")
d = data |> filter(fn: (r) => r._field == "delay")
d |> count() |> yield(name: "delays")
d |> mean() |> yield(name: "delay_mean")
d |> max() |> yield(name: "delay_max")
v = data |> filter(fn: (r) => r._field == "value" or r._field == "quality")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> filter(fn: (r) => r.quality == "good" and exists r.value)
  |> drop(columns: ["quality"]) |> rename(columns: {value: "_value"})
v |> count() |> yield(name: "values")
v |> min() |> yield(name: "min")
v |> mean() |> yield(name: "mean")
v |> max() |> yield(name: "max")`, quote(s.bucket), fluxTime(from), fluxTime(to), sel, fluxTime(to))
		res, err := s.query.Query(ctx, flux)
		if err != nil {
			return nil, fmt.Errorf("influxdb query: %w", err)
		}
		// A series kept under two sites comes as two tables of each result.
		type part struct {
			key
			site string
		}
		got := map[part]*store.PeriodStats{}
		for res.Next() {
			rec := res.Record()
			k := part{key: key{met: rec.Measurement()}}
			k.dev, _ = rec.ValueByKey("device").(string)
			k.unit, _ = rec.ValueByKey("unit").(string)
			k.site, _ = rec.ValueByKey("site").(string)
			p := got[k]
			if p == nil {
				p = new(store.PeriodStats)
				got[k] = p
			}
			switch v := rec.Value().(type) {
			case int64:
				switch rec.Result() {
				case "received":
					p.Received = v
				case "good":
					p.Good = v
				case "delays":
					p.Delays = v
				case "values":
					p.Values = v
				}
			case float64:
				switch rec.Result() {
				case "delay_mean":
					p.DelayMean = &v
				case "delay_max":
					p.DelayMax = &v
				case "min":
					p.Min = &v
				case "mean":
					p.Mean = &v
				case "max":
					p.Max = &v
				}
			}
		}
		err = res.Err()
		res.Close()
		if err != nil {
			return nil, fmt.Errorf("influxdb query: %w", err)
		}
		// Merge the sites in a fixed order, so the floating-point mean is
		// the same on every call.
		keys := make([]part, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(a, b int) bool { return keys[a].site < keys[b].site })
		for _, k := range keys {
			if parts[k.key] == nil {
				parts[k.key] = new(store.PeriodStats)
			}
			parts[k.key].Merge(*got[k])
		}
		for k, p := range parts {
			if j, ok := index[k]; ok {
				out[j].Periods[i] = *p
			}
		}
	}
	sort.Slice(out, func(a, b int) bool {
		x, y := out[a], out[b]
		if x.Device != y.Device {
			return x.Device < y.Device
		}
		if x.Metric != y.Metric {
			return x.Metric < y.Metric
		}
		return x.Unit < y.Unit
	})
	return out, nil
}
