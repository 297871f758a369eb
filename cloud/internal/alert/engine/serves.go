package engine

import (
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
)

// Serves says whether this cloud judges gateway gw now, and since when.
// A replica of a cluster judges only the gateways of the partitions it
// holds: their batches come to it alone (cloud/internal/natslink).
type Serves func(gw string) (bool, time.Time)

// served keeps the gateways and devices this replica judges; for those it
// took over, silence counts from the takeover, not from before it: what
// the replica did not hold it could not hear, so it is judged late (by at
// most the takeover's age) rather than paged for at once (docs/scaling.md).
func (e *Engine) served(gws []registry.GatewayView, devs []registry.Expected) ([]registry.GatewayView, []registry.Expected) {
	if e.o.Serves == nil {
		return gws, devs
	}
	outG := gws[:0:0]
	for _, g := range gws {
		if ok, _ := e.o.Serves(g.ID); ok {
			outG = append(outG, g)
		}
	}
	outD := devs[:0:0]
	for _, d := range devs {
		ok, since := e.o.Serves(d.Gateway)
		if !ok {
			continue
		}
		if !d.Quiet && d.LastSeen.Before(since) {
			d.LastSeen = since
		}
		if d.Quiet && !d.HealthSince.IsZero() && d.HealthSince.Before(since) {
			d.HealthSince = since
		}
		outD = append(outD, d)
	}
	return outG, outD
}
