package telemetry

import (
	"errors"
	"fmt"
)

// Batch is what a gateway sends upstream in one MQTT message: a run of
// consecutive readings from its buffer.
//
// Readings are numbered per Stream: Readings[i] has sequence FirstSeq+i. A
// stream is one incarnation of a gateway's buffer, so sequences never repeat
// within it; a new buffer (wiped disk, new device) starts a new stream.
type Batch struct {
	Gateway   string // sender; must equal the gateway in the topic
	Site      string // the gateway's site, empty if not configured
	Stream    string // buffer incarnation the sequences belong to
	FirstSeq  uint64 // sequence of Readings[0], at least 1
	Committed uint64 // the gateway has seen acks for every seq ≤ Committed
	Readings  []Reading
	// Events follow the readings in the sequence: the batch covers
	// FirstSeq … FirstSeq+Len()-1.
	Events []Event
	// Backlog marks items acquired while they could not be sent (the link
	// or the cloud was down) and drained behind live data: history to be
	// stored and judged at the time it was measured, not news.
	Backlog bool
}

// Batch flags, in the envelope's flags byte (format version 2).
const (
	flagBacklog = 1 << iota
	knownFlags  = flagBacklog
)

func (b *Batch) flags() byte {
	var f byte
	if b.Backlog {
		f |= flagBacklog
	}
	return f
}

func (b *Batch) setFlags(f byte) error {
	if f&^knownFlags != 0 {
		return malformed("unknown flags %#02x", f&^knownFlags)
	}
	if f == 0 {
		return malformed("a format version 2 batch without flags")
	}
	b.Backlog = f&flagBacklog != 0
	return nil
}

// Len is how many items (readings and events) the batch carries.
func (b *Batch) Len() int { return len(b.Readings) + len(b.Events) }

// LastSeq is the sequence of the batch's last item.
func (b *Batch) LastSeq() uint64 { return b.FirstSeq + uint64(b.Len()) - 1 }

// Validate checks the header and every reading.
func (b *Batch) Validate() error {
	if err := checkOrigin(b.Gateway, b.Site, b.Stream); err != nil {
		return err
	}
	if b.Len() == 0 {
		return errors.New("batch holds no readings and no events")
	}
	if b.Len() > MaxReadings {
		return fmt.Errorf("batch holds %d items, more than %d", b.Len(), MaxReadings)
	}
	if b.FirstSeq == 0 {
		return errors.New("first sequence is 0; sequences start at 1")
	}
	if b.LastSeq() < b.FirstSeq {
		return errors.New("sequence range overflows")
	}
	if b.Committed >= b.FirstSeq {
		return fmt.Errorf("committed %d is not below first sequence %d", b.Committed, b.FirstSeq)
	}
	for i := range b.Readings {
		if err := b.Readings[i].Validate(); err != nil {
			return fmt.Errorf("reading %d: %w", i, err)
		}
	}
	for i := range b.Events {
		if err := b.Events[i].Validate(); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
	}
	return nil
}

// checkOrigin checks a gateway, its site (which may be empty) and a stream.
func checkOrigin(gateway, site, stream string) error {
	if err := CheckName("gateway", gateway); err != nil {
		return err
	}
	if site != "" {
		if err := CheckName("site", site); err != nil {
			return err
		}
	}
	return CheckName("stream", stream)
}
