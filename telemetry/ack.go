package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Ack is the cloud's confirmation, on the gateway's ack topic, that readings
// are stored. It is JSON so that a technician can read it with mosquitto_sub.
//
// First..Last is the batch that was just written. Through, when not zero, is
// the highest sequence up to which the cloud knows every reading of the
// stream is stored. A gateway may forget everything up to the highest
// contiguous sequence it has seen acknowledged, by either field.
//
// An ack with Resync set is the opposite: First..Last was NOT stored,
// because the compact context Context it refers to is unknown to the
// cloud; the gateway defines its context again (CompactEncoder.Reset) and
// sends what is unacknowledged. Stream may be empty then (a batch that
// only refers to a context does not name its stream).
//
// ResendFrom, when not zero, asks the gateway to send its stream again
// from that sequence: the cloud's commit record ends below the gateway's
// Committed claim (a cloud restored from a backup). The gateway rewinds to
// it from what it kept (keep_acked) and reports what it no longer has with
// a gap event (reason "not_kept"). It is left out of the JSON when zero,
// so a gateway that predates it never sees it unless it is needed.
type Ack struct {
	Stream     string `json:"stream,omitempty"`
	First      uint64 `json:"first"`
	Last       uint64 `json:"last"`
	Through    uint64 `json:"through,omitempty"`
	Resync     bool   `json:"resync,omitempty"`
	Context    uint32 `json:"context,omitempty"`
	ResendFrom uint64 `json:"resend_from,omitempty"`
}

// MaxAckBytes bounds an encoded ack.
const MaxAckBytes = 1024

// EncodeAck encodes a as JSON.
func EncodeAck(a Ack) ([]byte, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(a)
}

// DecodeAck parses and checks an ack. Unknown fields are refused.
func DecodeAck(data []byte) (Ack, error) {
	var a Ack
	if len(data) > MaxAckBytes {
		return a, fmt.Errorf("ack is %d bytes, more than %d", len(data), MaxAckBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return a, fmt.Errorf("ack: %w", err)
	}
	if dec.More() {
		return a, fmt.Errorf("ack: trailing data")
	}
	return a, a.validate()
}

func (a Ack) validate() error {
	if a.Resync && a.Through != 0 {
		return fmt.Errorf("ack: a resync request acknowledges nothing (through %d)", a.Through)
	}
	if !a.Resync || a.Stream != "" {
		if err := CheckName("stream", a.Stream); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
	}
	if a.Resync && a.ResendFrom != 0 {
		return fmt.Errorf("ack: a resync request asks for no resend (resend_from %d)", a.ResendFrom)
	}
	if a.First == 0 || a.Last < a.First {
		return fmt.Errorf("ack: range %d..%d is empty or starts at 0", a.First, a.Last)
	}
	return nil
}

// GapNotKept is the reason attribute of the gap event a gateway writes
// when it cannot send again what a cloud asked for with Ack.ResendFrom:
// its values from_seq and to_seq name those sequences, and the cloud's
// commit record takes them as settled (nothing more will come for them).
const GapNotKept = "not_kept"
