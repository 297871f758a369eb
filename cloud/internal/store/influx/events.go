package influx

import (
	"context"
	"fmt"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// eventMeasurement holds every event. Tags: gateway, site, device, kind and
// key (so two tags first seen at one instant stay two points); fields: the
// event's attributes (strings), its values (floats) and "clock".
const eventMeasurement = "event"

// WriteEvents implements store.Store.
func (s *Store) WriteEvents(ctx context.Context, gateway, site string, es []telemetry.Event) error {
	return s.WriteGroup(ctx, &store.Group{Batches: []*telemetry.Batch{{Gateway: gateway, Site: site, Events: es}}})
}

func eventPoints(gateway, site string, es []telemetry.Event) []*write.Point {
	pts := make([]*write.Point, 0, len(es))
	for _, e := range es {
		p := write.NewPointWithMeasurement(eventMeasurement).AddTag("gateway", gateway).AddTag("device", e.Device).
			AddTag("kind", e.Kind).SetTime(e.Time).AddField("clock", e.Clock.String())
		if site != "" {
			p.AddTag("site", site)
		}
		if e.Key != "" {
			p.AddTag("key", e.Key)
		}
		for k, v := range e.Attrs {
			p.AddField(k, v)
		}
		for k, v := range e.Values {
			p.AddField(k, v)
		}
		pts = append(pts, p)
	}
	return pts
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, q store.EventQuery) ([]store.Event, error) {
	limit := q.Limit
	if limit <= 0 || limit > store.MaxEvents {
		limit = store.MaxEvents
	}
	filter := fmt.Sprintf(`r._measurement == %s and r._time < %s`, quote(eventMeasurement), fluxTime(q.To))
	for tag, v := range map[string]string{"gateway": q.Gateway, "device": q.Device, "kind": q.Kind, "key": q.Key} {
		if v != "" {
			filter += fmt.Sprintf(` and r.%s == %s`, tag, quote(v))
		}
	}
	flux := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => %s)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group() |> sort(columns: ["_time"], desc: true) |> limit(n: %d)`,
		quote(s.bucket), fluxTime(q.From), fluxTime(q.To), filter, limit)
	res, err := s.query.Query(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("influxdb query: %w", err)
	}
	defer res.Close()
	var out []store.Event
	for res.Next() {
		rec := res.Record()
		e := store.Event{Time: rec.Time().UTC()}
		for k, v := range rec.Values() {
			switch k {
			case "gateway":
				e.Gateway, _ = v.(string)
			case "site":
				e.Site, _ = v.(string)
			case "device":
				e.Device, _ = v.(string)
			case "kind":
				e.Kind, _ = v.(string)
			case "key":
				e.Key, _ = v.(string)
			case "result", "table", "_start", "_stop", "_time", "_measurement", "clock":
			default:
				switch x := v.(type) {
				case string:
					if e.Attrs == nil {
						e.Attrs = map[string]string{}
					}
					e.Attrs[k] = x
				case float64:
					if e.Values == nil {
						e.Values = map[string]float64{}
					}
					e.Values[k] = x
				}
			}
		}
		out = append(out, e)
	}
	if res.Err() != nil {
		return nil, fmt.Errorf("influxdb query: %w", res.Err())
	}
	return out, nil
}
