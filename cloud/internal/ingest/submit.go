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
	if !in.admit(b.Gateway, b, nil, reply) {
		return 0, ErrNotStored
	}
	// Committed by whoever leads the line, within its write timeout; the
	// answer always comes.
	o := <-reply
	switch {
	case !o.ok:
		return 0, ErrNotStored
	case o.dup:
		return Duplicate, nil
	}
	return Stored, nil
}
