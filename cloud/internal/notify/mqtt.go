package notify

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// MQTT topics: per state change fieldwatch/v1/alerts/<severity>/<site>/<rule>
// (QoS 1, not retained); the current state of every alert retained on
// fieldwatch/v1/alerts/state/<fingerprint>, cleared (an empty retained
// message) when it resolves.
func (rc *receiver) prefix() string {
	if p := rc.cfg.MQTT.TopicPrefix; p != "" {
		return p
	}
	return defaultPrefix
}

func eventTopic(prefix string, a *Alert) string {
	return prefix + "/" + sanitizeLevel(a.Labels["severity"]) + "/" + sanitizeLevel(a.Labels["site"]) + "/" +
		sanitizeLevel(a.Labels["rule"])
}

func stateTopic(prefix string, a *Alert) string {
	return prefix + "/state/" + sanitizeLevel(a.Fingerprint)
}

// mqttState is the retained state message; ackOnly marks one sent because
// only the acknowledgement changed.
func (rc *receiver) mqttState(a *Alert, caused, now time.Time, ackOnly bool) *message {
	key := alertKey(a) + ":state"
	if ackOnly {
		if a.Acknowledged {
			key += ":ack"
		} else {
			key += ":unack"
		}
	}
	m := &message{key: key, topic: stateTopic(rc.prefix(), a), retained: true, payload: []byte{},
		causedAt: caused, createdAt: now}
	if a.Status == StatusFiring {
		m.payload = eventJSON(a, key, false)
	}
	return m
}

// sanitizeLevel makes s one topic level: no wildcards or separators, valid
// UTF-8, "-" for empty.
func sanitizeLevel(s string) string {
	if s == "" {
		return "-"
	}
	s = strings.ToValidUTF8(s, "_")
	return strings.Map(func(r rune) rune {
		switch r {
		case '+', '#', '/', 0, utf8.RuneError:
			return '_'
		}
		return r
	}, s)
}

func validPrefix(p string) bool {
	if !utf8.ValidString(p) || strings.ContainsAny(p, "+#\x00") {
		return false
	}
	for _, l := range strings.Split(p, "/") {
		if l == "" {
			return false
		}
	}
	return true
}

// PahoPublisher publishes through a connected paho client.
type PahoPublisher struct{ c mqtt.Client }

// NewPahoPublisher returns a Publisher over c; the caller connects c (with
// auto-reconnect) and disconnects it after the Notifier is closed.
func NewPahoPublisher(c mqtt.Client) Publisher { return &PahoPublisher{c: c} }

// Publish implements Publisher: QoS 1, waiting for the PUBACK or ctx.
func (p *PahoPublisher) Publish(ctx context.Context, topic string, retained bool, payload []byte) error {
	tok := p.c.Publish(topic, 1, retained, payload)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
