package api

import (
	"net/http"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/engine"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Thresholds is the answer of GET /api/v1/thresholds.
type Thresholds struct {
	Station    string             `json:"station"`
	Site       string             `json:"site,omitempty"`
	Device     string             `json:"device"`
	Metric     string             `json:"metric"`
	Unit       string             `json:"unit,omitempty"`
	Thresholds []engine.Threshold `json:"thresholds"`
}

// thresholds lists the levels of the threshold rules that judge one series
// (engine.Thresholds), for a chart to draw as lines. The site is the
// station's as the registry knows it, as the engine judged its batches.
func (a *API) thresholds(r *http.Request) (any, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "station", "device", "metric"); err != nil {
		return nil, err
	}
	out := Thresholds{Station: q.Get("station"), Device: q.Get("device"), Metric: q.Get("metric"), Thresholds: []engine.Threshold{}}
	for param, v := range map[string]string{"station": out.Station, "device": out.Device, "metric": out.Metric} {
		if err := telemetry.CheckName(param, v); err != nil {
			return nil, badParam(param, "%v", err)
		}
	}
	if st, ok := a.stationOf(out.Station); ok {
		out.Site = st.Site
		for _, d := range st.Devices {
			if d.ID != out.Device {
				continue
			}
			for _, l := range d.Latest {
				if l.Metric == out.Metric {
					out.Unit = l.Unit
				}
			}
		}
	}
	if a.alerts != nil {
		out.Thresholds = a.alerts.Thresholds(out.Station, out.Site, out.Device, out.Metric)
	}
	return out, nil
}

func (a *API) stationOf(id string) (st registry.Station, ok bool) {
	if a.registry == nil {
		return st, false
	}
	return a.registry.Station(id)
}
