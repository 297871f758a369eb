package app

import (
	"context"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/gateway/internal/clock"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// reportClock writes a clock event into the buffer for each change in how
// times are stamped (the timeline's Changes), until ctx is done. The
// timeline keeps the changes that arrive during a reload for the next
// setup's reporter.
func (a *App) reportClock(ctx context.Context, changes <-chan clock.Change, buf *buffer.Buffer, gateway string) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-changes:
			e := clockEvent(gateway, c)
			if _, err := buf.AppendEvents([]telemetry.Event{e}); err != nil {
				a.clockUnwritten.Add(1)
				a.log.Error("cannot store clock event", "state", e.Attrs["state"], "err", err)
				continue
			}
			a.log.Info("clock event", "state", e.Attrs["state"], "quality", c.Quality, "correction", c.Correction)
		}
	}
}

// clockEvent describes a change: unsynced, stamped with the unsynced clock
// itself (re-stamped when sent once the clock is set), or synced, with its
// source and the correction re-stamping applies.
func clockEvent(gateway string, c clock.Change) telemetry.Event {
	e := telemetry.Event{Device: gateway, Kind: telemetry.EventClock, Time: c.At, Clock: c.Quality,
		Attrs: map[string]string{"state": "unsynced"}}
	if c.Synced {
		e.Attrs["state"], e.Attrs["source"] = "synced", c.Quality.String()
		if c.Corrected {
			e.Values = map[string]float64{"offset_s": c.Correction.Seconds()}
		}
	}
	return e
}
