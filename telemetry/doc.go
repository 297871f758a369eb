// Package telemetry is Fieldwatch's shared vocabulary: the Reading a gateway
// acquires, the Batch it sends upstream, the Ack the cloud returns, the
// gateway State it announces, the MQTT topics that carry them, and the
// versioned binary codec of a batch (documented in docs/wire.md).
//
// It holds types and codecs only. Both gateway/ and cloud/ import it; it
// imports neither.
package telemetry
