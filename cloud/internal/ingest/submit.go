package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Submitted is what became of a batch handed to Submit.
type Submitted int

const (
	// Stored: the batch was judged and written.
	Stored Submitted = iota
	// Duplicate: its commit record already covers it (a frame sent again);
	// nothing was written or judged twice.
	Duplicate
)

// ErrNotStored is returned by Submit when the store (or the early-warning
// engine) did not take the batch; the caller must not confirm it to its
// sender, which sends it again.
var ErrNotStored = errors.New("batch not stored")

// Submit runs a batch that did not arrive over MQTT — readings a bureau
// protocol's listener (SL 651, HJ 212) made of a station's frame — through
// the same intake as a gateway's batch: registry, replay check on the
// stream's commit record, future items dropped, early warnings, store. It
// returns once the batch is durable (Stored), or was already (Duplicate).
// A batch that does not validate is refused without being counted here.
func (in *Ingestor) Submit(ctx context.Context, b *telemetry.Batch) (Submitted, error) {
	if err := b.Validate(); err != nil {
		return 0, fmt.Errorf("ingest: %w", err)
	}
	reply := make(chan outcome, 1)
	if !in.admit(b.Gateway, b, nil, reply, nil) {
		return 0, ErrNotStored
	}
	// Committed by the line's leader, within its write timeout; the answer
	// always comes (reply is buffered), but the caller may stop waiting.
	var o outcome
	select {
	case o = <-reply:
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: %w", ErrNotStored, ctx.Err())
	}
	switch {
	case !o.ok:
		return 0, ErrNotStored
	case o.dup:
		return Duplicate, nil
	}
	return Stored, nil
}

// Settle returns once every group in flight is finished: acknowledged
// batches' commit records written (or failed). Run does it before it
// returns; a caller that hands batches to Submit without Run (tests of the
// station listeners) calls it before it reads the records or stops.
func (in *Ingestor) Settle() { in.running.Wait() }
