package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// A restored cloud (Options.Restored: its store came back from a backup)
// may hold less of a stream than the gateway was told: everything it
// acknowledged after the backup is gone with the old store, and the
// gateway trimmed it. The gateway's Committed claim says how far it was
// acknowledged, and a cloud that trusts it (store.Commit.With) would move
// its commit record over the hole, take the resent items for replays and
// drop them. So a restored cloud never takes a claim beyond its record:
// it stores the batch, records only its own range, and asks the gateway to
// send the stream again from the sequence after its record (Ack.ResendFrom)
// — on every batch whose claim is still beyond it, which a gateway treats
// as one request. The gateway sends again what it kept (keep_acked), and
// a gap event with reason not_kept for the sequences it no longer has,
// which settles them in the record: nothing more will come for them.

// restoredMetrics count what a restored cloud asked for and lost.
type restoredMetrics struct {
	resends prometheus.Counter
	notKept prometheus.Counter
	badGaps prometheus.Counter
}

func newRestoredMetrics() restoredMetrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_ingest_" + name, Help: help})
	}
	return restoredMetrics{
		resends: c("resend_requests_total", "Acks asking a gateway to send its stream again from the restored commit record (a cloud restored from a backup)."),
		notKept: c("not_kept_items_total", "Sequences a gateway could not send again to the restored cloud (no longer kept): lost."),
		badGaps: c("bad_not_kept_gaps_total", "Gap events of reason not_kept with sequences that make no sense (ignored)."),
	}
}

func (m restoredMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.resends, m.notKept, m.badGaps}
}

// extend is the stream's record c with p's batch added: with the
// gateway's claim taken as stored, or on a restored cloud with the
// sequences the gateway says it no longer keeps; and the sequence the
// gateway is asked to send again from (0: none).
func (in *Ingestor) extend(c store.Commit, p *pending) (store.Commit, uint64) {
	if !in.o.Restored || p.reply != nil { // the station listeners' own numbering: their claims hold
		return c.With(p.b.Committed, p.first, p.last), 0
	}
	out := c.With(0, p.first, p.last)
	for _, e := range p.b.Events {
		if e.Kind != telemetry.EventGap || e.Attrs["reason"] != telemetry.GapNotKept {
			continue
		}
		from, to := e.Values["from_seq"], e.Values["to_seq"]
		if e.Device != p.gw || from < 1 || to < from || to >= float64(p.first) || from != float64(uint64(from)) ||
			to != float64(uint64(to)) {
			in.m.restored.badGaps.Inc()
			if ok, n := in.throttle.Allow("bad_not_kept"); ok {
				in.log.Warn("ignoring a not_kept gap event whose sequences make no sense", "gateway", p.gw,
					"from_seq", from, "to_seq", to, "batch_first_seq", p.first, "similar_suppressed", n)
			}
			continue
		}
		lost := uint64(to) - uint64(from) + 1
		for _, s := range out.Above {
			lo, hi := max(s.First, uint64(from)), min(s.Last, uint64(to))
			if hi >= lo {
				lost -= hi - lo + 1 // stored after the restore: not lost
			}
		}
		if uint64(to) <= out.Through {
			lost = 0
		} else if uint64(from) <= out.Through {
			lost -= min(lost, out.Through-uint64(from)+1)
		}
		in.m.restored.notKept.Add(float64(lost))
		in.log.Error("the gateway no longer keeps items the restored store lacks: they are lost", "gateway", p.gw,
			"stream", p.b.Stream, "from_seq", uint64(from), "to_seq", uint64(to), "items_lost", lost)
		out = out.With(0, uint64(from), uint64(to))
	}
	return out, in.resendFrom(out, p)
}

// resendFrom is where a restored cloud asks p's gateway to send again
// from, given the stream's record c: after c.Through when the gateway
// claims more, else 0.
func (in *Ingestor) resendFrom(c store.Commit, p *pending) uint64 {
	if !in.o.Restored || p.reply != nil || p.b.Committed <= c.Through {
		return 0
	}
	in.m.restored.resends.Inc()
	if ok, n := in.throttle.Allow("resend:" + p.gw); ok {
		in.log.Warn("the gateway was told more is stored than the restored store holds; asking it to send again",
			"gateway", p.gw, "stream", p.b.Stream, "claimed_through", p.b.Committed, "resend_from", c.Through+1,
			"similar_suppressed", n)
	}
	return c.Through + 1
}
