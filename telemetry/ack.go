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
//
// An ack with RetryMS set is a refusal: First..Last was NOT stored, because
// the store failed (the cloud retried the write for a while first); the
// gateway sends it again RetryMS milliseconds later rather than after its
// ack timeout. Stream may be empty, as for a resync.
//
// An ack with Online set carries nothing else: the cloud has (re)subscribed
// after a restart or a lost connection to the broker, so what the gateway
// published meanwhile may have reached no one; the gateway sends what is
// unacknowledged again at once.
//
// RetryMS, Online and ResendFrom are sent only to gateways whose state
// lists them in Accepts (AckRetry, AckOnline, AckResendFrom): an older
// gateway refuses unknown fields.
type Ack struct {
	Stream     string `json:"stream,omitempty"`
	First      uint64 `json:"first,omitempty"`
	Last       uint64 `json:"last,omitempty"`
	Through    uint64 `json:"through,omitempty"`
	Resync     bool   `json:"resync,omitempty"`
	Context    uint32 `json:"context,omitempty"`
	ResendFrom uint64 `json:"resend_from,omitempty"`
	RetryMS    uint32 `json:"retry_ms,omitempty"`
	Online     bool   `json:"online,omitempty"`
}

// The optional ack fields a gateway may list in its state's Accepts.
const (
	AckRetry      = "retry_ms"
	AckOnline     = "online"
	AckResendFrom = "resend_from"
)

// MaxAckBytes bounds an encoded ack.
const MaxAckBytes = 1024

// MaxRetryMS bounds an ack's retry hint: ten minutes.
const MaxRetryMS = 600_000

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
	if a.Online {
		if a != (Ack{Online: true}) {
			return fmt.Errorf("ack: an online notice carries nothing else")
		}
		return nil
	}
	if a.Resync && a.Through != 0 {
		return fmt.Errorf("ack: a resync request acknowledges nothing (through %d)", a.Through)
	}
	if a.RetryMS != 0 {
		switch {
		case a.Resync:
			return fmt.Errorf("ack: a retry hint does not go with a resync request")
		case a.Through != 0:
			return fmt.Errorf("ack: a refusal acknowledges nothing (through %d)", a.Through)
		case a.RetryMS > MaxRetryMS:
			return fmt.Errorf("ack: retry_ms %d is more than %d", a.RetryMS, MaxRetryMS)
		}
	}
	if !a.Refused() || a.Stream != "" {
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

// Refused reports whether a says First..Last was not stored: a resync
// request or a retry hint.
func (a Ack) Refused() bool { return a.Resync || a.RetryMS != 0 }
