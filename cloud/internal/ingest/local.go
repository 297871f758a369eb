package ingest

import (
	"context"
	"fmt"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Submit takes a batch that arrived by another path than the broker (the
// HJ 212 listener) through the same steps as an MQTT batch: the registry
// hears it, early warnings judge it, the store writes it with its stream's
// commit record, the registry's latest values move. Its items are numbered
// first … last in b.Stream by the caller (the range need not be b.Len()
// long: a listener may give a whole frame one number); a range the stream's
// commit record already covers is a replay, neither written nor judged
// again (dup, counted in fieldwatch_ingest_duplicates_total). It returns
// once the batch is durable, so the caller may acknowledge it; on an error
// nothing was committed (counted as a store error) and the sender should
// send it again.
func (in *Ingestor) Submit(ctx context.Context, b *telemetry.Batch, first, last uint64) (dup bool, err error) {
	if first == 0 || last < first {
		return false, fmt.Errorf("BUG: ingest.Submit: range %d-%d", first, last)
	}
	if err := b.Validate(); err != nil {
		return false, fmt.Errorf("BUG: ingest.Submit: %w", err)
	}
	in.devicesRefused(b.Gateway, "batch", in.o.Registry.Heard(b))
	_, dup, err = in.commit(ctx, b, nil, first, last)
	if err != nil {
		in.storeFailed(b.Gateway, b, err)
		return false, err
	}
	if dup {
		in.m.duplicates.Inc()
	}
	return dup, nil
}
