package uplink

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// A cloud restored from a backup has lost what it acknowledged since the
// backup, and asks for it again with an ack's ResendFrom (the sequence
// after its restored commit record). The uplink rewinds the buffer's
// cursor to it — the buffer keeps acknowledged items for keep_acked — and
// sends everything from there again, what the cloud still holds being
// acknowledged at once. What the buffer no longer keeps cannot be sent:
// it is reported once, upstream as a gap event (reason not_kept, the
// sequences it covers), in the log, a counter and /status. A request at
// or beyond the cursor changes nothing, so the same request repeated
// (the cloud answers every batch of the old claim with it) is harmless.

// resendMetrics are the resend requests' metrics.
type resendMetrics struct {
	requests prometheus.Counter
	rewinds  prometheus.Counter
	notKept  prometheus.Counter
}

func newResendMetrics(c func(name, help string) prometheus.Counter) resendMetrics {
	return resendMetrics{
		requests: c("resend_requests_total", "Acks asking to send the stream again from a sequence (a cloud restored from a backup)."),
		rewinds:  c("rewinds_total", "Times the cursor went back to send acknowledged items again from keep_acked."),
		notKept: c("resend_not_kept_items_total", "Items a restored cloud asked for again that the buffer no longer kept "+
			"(reported upstream as a gap event, reason not_kept)."),
	}
}

func (m resendMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.rewinds, m.notKept}
}

// resend answers an ack's ResendFrom.
func (u *Uplink) resend(a telemetry.Ack) {
	u.m.resend.requests.Inc()
	buf := u.o.Buffer
	cursor := buf.Acked()
	if a.ResendFrom > cursor {
		return // nothing acknowledged to send again: what follows is sent anyway
	}
	from, missing, err := buf.Rewind(a.ResendFrom)
	if err != nil {
		u.log.Error("cannot go back to send acknowledged items again", "resend_from", a.ResendFrom, "err", err)
		return
	}
	if missing > 0 && a.ResendFrom < u.notKeptFrom {
		// Reported once per range: a repeated request finds the same hole.
		u.notKeptFrom = a.ResendFrom
		to := a.ResendFrom + missing - 1
		u.notKept.Add(missing)
		u.m.resend.notKept.Add(float64(missing))
		u.log.Error("the cloud lost acknowledged items this gateway no longer keeps (keep_acked); they are lost",
			"from_seq", a.ResendFrom, "to_seq", to, "items", missing, "keep_acked_from_seq", from)
		e := telemetry.Event{Device: u.o.Gateway, Kind: telemetry.EventGap, Key: fmt.Sprintf("not-kept-%d-%d", a.ResendFrom, to),
			Time: time.Now(), Clock: telemetry.ClockUnknown,
			Attrs:  map[string]string{"reason": telemetry.GapNotKept, "policy": "keep_acked"},
			Values: map[string]float64{"from_seq": float64(a.ResendFrom), "to_seq": float64(to), "count": float64(missing), "span_s": 0}}
		if _, err := buf.AppendEvents([]telemetry.Event{e}); err != nil {
			u.log.Error("cannot record the items not kept in the buffer", "err", err)
		}
	}
	if from > cursor {
		return
	}
	u.m.resend.rewinds.Inc()
	u.rewound.Add(cursor + 1 - from)
	u.log.Warn("the cloud asks for acknowledged items again (restored from a backup?); sending them again from what is kept",
		"resend_from", a.ResendFrom, "from_seq", from, "to_seq", cursor, "items", cursor+1-from)
	// What the old cloud acknowledged beyond the cursor is gone with it too.
	u.acked = nil
	u.restart("resend requested")
}
