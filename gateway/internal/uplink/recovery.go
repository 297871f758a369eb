package uplink

import (
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Recovery after an outage (docs/decisions.md §40). The gateway tells the
// cloud, in its state, which optional acks it understands (accepts): a
// refusal with a retry hint, sent when the store failed, and the online
// notice, sent when the cloud has subscribed again. A cloud sends neither
// to a gateway that does not list them.

// accepts are the optional ack fields this gateway understands.
var accepts = []string{telemetry.AckRetry, telemetry.AckOnline, telemetry.AckResendFrom}

// refused answers a cloud that could not store a batch in flight and says
// when to send it again: nothing is sent until then, and then everything
// unacknowledged from the first, as after an ack timeout but without
// waiting for it. The first refusal of a round sets the time; a refusal of
// a batch no longer in flight (sent before a restart) is stale.
func (u *Uplink) refused(a telemetry.Ack) {
	if a.Stream != "" && a.Stream != u.o.Buffer.Stream() || !u.sent(a.First, a.Last) {
		u.log.Debug("refusal of a batch not in flight ignored", "first_seq", a.First, "last_seq", a.Last)
		return
	}
	u.m.refusals.Inc()
	wait := time.Duration(a.RetryMS) * time.Millisecond
	if !u.refusing {
		u.refusing = true
		u.log.Warn("the cloud could not store a batch; sending it again when it asks (logged once until an ack)",
			"first_seq", a.First, "last_seq", a.Last, "retry_in", wait)
	}
	if u.resendAt.IsZero() {
		u.resendAt = time.Now().Add(wait)
	}
}

// sent reports whether first…last is a batch in flight.
func (u *Uplink) sent(first, last uint64) bool {
	for _, f := range u.inflight {
		if f.first == first && f.last == last {
			return true
		}
	}
	return false
}

// cloudOnline answers the cloud's online notice: it has subscribed again,
// so what was published before may have reached no one, and is sent again
// now rather than after the ack timeout.
func (u *Uplink) cloudOnline() {
	u.m.onlineNotices.Inc()
	if len(u.inflight) == 0 && u.resendAt.IsZero() {
		return
	}
	u.restart("the cloud subscribed again")
}
