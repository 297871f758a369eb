package natslink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"

	"github.com/fieldwatch/fieldwatch/cloud/internal/ingest"
)

// Fleet management on NATS (docs/fleet.md, docs/decisions.md §47).
//
// Desired configs and release manifests must be retained for the gateway's
// next connection. NATS keeps MQTT retained messages in its own stream
// ($MQTT_rmsgs), written only by its MQTT listener when an MQTT client
// publishes with the retain flag (server/mqtt.go, mqttHandlePubRetain); a
// core or JetStream publish on the topic's subject is delivered to those
// subscribed now and kept for no one. So a replica publishes them as an
// MQTT client of the cluster's listeners (Options.MQTT), QoS 1: NATS
// stores the retained message (replicated as mqtt.stream_replicas) before
// the PUBACK.
//
// Commands and their replies need nothing retained: a command is a core
// message on the gateway's cmd subject, which its MQTT subscription
// receives, and every replica subscribes to every gateway's replies on
// core NATS, so the one that sent the command hears the reply whichever
// replica holds the gateway's partition.

// MQTTOptions reach the cluster's MQTT listeners, for retained messages.
type MQTTOptions struct {
	URLs     []string // tcp://n1:1883, ssl://n1:8883; failed over in turn
	Username string
	Password string
	TLS      *tls.Config
}

// replySubjects are every gateway's command replies.
const replySubjects = "fieldwatch.v1.*.reply"

// fleet is the replica's MQTT client for retained messages.
type fleet struct {
	mu     sync.Mutex
	client mqtt.Client // nil until Run starts it, or without MQTT URLs
	up     bool
}

// startFleet connects the MQTT client (it retries and reconnects by
// itself) unless no listener is configured.
func (l *Link) startFleet() {
	m := l.o.MQTT
	if len(m.URLs) == 0 {
		l.log.Info("no nats.mqtt.urls: desired configs and releases cannot be published (501); commands work")
		return
	}
	opts := mqtt.NewClientOptions().
		// The replica's own id: a second session under one client id
		// anywhere in the cluster would close the first.
		SetClientID("fieldwatch-fleet-" + l.id).
		SetUsername(m.Username).SetPassword(m.Password).SetTLSConfig(m.TLS).
		// NATS refuses MQTT 3.1, and paho falls back to it after a refusal.
		SetProtocolVersion(4).
		SetCleanSession(true).SetKeepAlive(30 * time.Second).SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).SetMaxReconnectInterval(5 * time.Second).
		SetOnConnectHandler(func(c mqtt.Client) {
			l.fleet.mu.Lock()
			l.fleet.up = true
			l.fleet.mu.Unlock()
			l.log.Info("connected to NATS's MQTT listener for retained messages", "user", m.Username)
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			l.fleet.mu.Lock()
			l.fleet.up = false
			l.fleet.mu.Unlock()
			l.log.Warn("lost NATS's MQTT listener (retained messages)", "err", err)
		})
	for _, u := range m.URLs {
		opts.AddBroker(u)
	}
	c := mqtt.NewClient(opts)
	l.fleet.mu.Lock()
	l.fleet.client = c
	l.fleet.mu.Unlock()
	c.Connect()
}

// stopFleet disconnects the MQTT client.
func (l *Link) stopFleet() {
	l.fleet.mu.Lock()
	c := l.fleet.client
	l.fleet.client, l.fleet.up = nil, false
	l.fleet.mu.Unlock()
	if c != nil {
		c.Disconnect(250)
	}
}

// PublishRetained publishes payload retained on topic through NATS's MQTT
// listener (QoS 1) and returns once it has taken it, or ctx is done.
// Without nats.mqtt it returns an error wrapping ingest.ErrNoRetained.
func (l *Link) PublishRetained(ctx context.Context, topic string, payload []byte) error {
	if len(l.o.MQTT.URLs) == 0 {
		return fmt.Errorf("%w: this cloud runs on NATS without nats.mqtt.urls (the cluster's MQTT listeners, "+
			"through which NATS keeps retained messages; docs/scaling.md)", ingest.ErrNoRetained)
	}
	l.fleet.mu.Lock()
	c, up := l.fleet.client, l.fleet.up
	l.fleet.mu.Unlock()
	if c == nil || !up {
		return errors.New("not connected to NATS's MQTT listener (nats.mqtt.urls)")
	}
	tok := c.Publish(topic, 1, true, payload)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return fmt.Errorf("NATS's MQTT listener did not take the message: %w", ctx.Err())
	}
}

// fleetUp reports whether the MQTT client for retained messages is
// connected.
func (l *Link) fleetUp() bool {
	l.fleet.mu.Lock()
	defer l.fleet.mu.Unlock()
	return l.fleet.up
}

// subscribeReplies hands every gateway's command replies to deliver.
func (l *Link) subscribeReplies(nc *nats.Conn, deliver func(ingest.Message)) (*nats.Subscription, error) {
	return nc.Subscribe(replySubjects, func(m *nats.Msg) { deliver(coreMsg{m}) })
}
