package ingest

import "context"

// Message is a gateway's message as it reaches the ingestor: paho's
// mqtt.Message is one, and so is a JetStream message (natslink).
type Message interface {
	Topic() string
	Payload() []byte
	Retained() bool
}

// Finisher is a Message whose link wants to hear what became of it. ok:
// handled for good (stored and acknowledged, a replay answered, or refused
// as malformed: never worth delivering again); !ok: not stored, so a link
// that can deliver it again (JetStream) does, to whichever replica then
// serves the gateway. Finish is called once per message.
type Finisher interface {
	Finish(ok bool)
}

// finish tells m's link, if it asks, what became of m.
func finish(m Message, ok bool) {
	if f, is := m.(Finisher); is {
		f.Finish(ok)
	}
}

// Link carries the gateways' messages to the ingestor and its acks back,
// in place of the MQTT broker of Options.BrokerURL: a NATS JetStream
// stream partitioned by gateway (cloud/internal/natslink, docs/scaling.md).
type Link interface {
	// Run calls deliver with each batch, state message and command reply
	// until ctx is done. deliver blocks while the intake is full
	// (backpressure); a reply is only handed to the command waiting for it.
	// Every replica must be delivered every gateway's replies: the
	// replica that sent a command need not hold the gateway.
	Run(ctx context.Context, deliver func(Message)) error
	// Publish sends payload on an MQTT topic (an ack, a command); not
	// waited for.
	Publish(topic string, payload []byte) error
	// PublishRetained keeps payload retained on an MQTT topic (a desired
	// config, a release manifest) and returns once the broker has taken
	// it, or ctx is done. An error wrapping ErrNoRetained: this link was
	// not given the means to.
	PublishRetained(ctx context.Context, topic string, payload []byte) error
	// Connected reports whether messages can flow.
	Connected() bool
}
