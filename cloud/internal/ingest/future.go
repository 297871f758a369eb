package ingest

import (
	"fmt"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// MaxFuture is the default of Options.MaxFuture: how far ahead of the
// cloud's clock an item may be stamped. An NTP- or GPS-synced gateway is
// milliseconds off; one on its RTC drifts by seconds to a minute a month;
// a gateway whose clock was never set stamps 1970, in the past. Ten
// minutes takes all of them, while a reading stamped in 2200 (a wrong RTC,
// a bug, a forgery), which would pin its device's latest value for ever,
// is dropped. docs/decisions.md says why the rest of its batch is kept.
const MaxFuture = 10 * time.Minute

// dropFuture removes from b the readings and events stamped more than
// maxFuture after now, and returns how many it removed and how far ahead
// the furthest was. The batch's sequence range is the caller's to keep:
// b.LastSeq no longer covers what was removed.
func dropFuture(b *telemetry.Batch, now time.Time, maxFuture time.Duration) (n int, ahead time.Duration) {
	limit := now.Add(maxFuture)
	late := func(t time.Time) bool {
		if !t.After(limit) {
			return false
		}
		n++
		ahead = max(ahead, t.Sub(now))
		return true
	}
	var rs []telemetry.Reading
	for i := range b.Readings {
		if late(b.Readings[i].Time) {
			if rs == nil {
				rs = append(make([]telemetry.Reading, 0, len(b.Readings)-1), b.Readings[:i]...)
			}
		} else if rs != nil {
			rs = append(rs, b.Readings[i])
		}
	}
	if rs != nil {
		b.Readings = rs
	}
	var es []telemetry.Event
	for i := range b.Events {
		if late(b.Events[i].Time) {
			if es == nil {
				es = append(make([]telemetry.Event, 0, len(b.Events)), b.Events[:i]...)
			}
		} else if es != nil {
			es = append(es, b.Events[i])
		}
	}
	if es != nil {
		b.Events = es
	}
	return n, ahead
}

// futureEvent is what the operator sees of items dropped from the batch
// first…last: an event of the gateway, stored with the rest of the batch,
// in the station's events and open to event rules.
func futureEvent(gw string, first, last uint64, n int, ahead, maxFuture time.Duration, now time.Time) telemetry.Event {
	return telemetry.Event{Device: gw, Kind: telemetry.EventFuture, Key: fmt.Sprintf("seq-%d-%d", first, last),
		Time: now.UTC().Truncate(time.Millisecond), Attrs: map[string]string{"reason": "clock_ahead"},
		Values: map[string]float64{"count": float64(n), "ahead_s": ahead.Round(time.Second).Seconds(),
			"max_future_s": maxFuture.Seconds()}}
}
