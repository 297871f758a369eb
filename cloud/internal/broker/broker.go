// Package broker is the cloud's embedded MQTT broker (mochi-mqtt/server), used
// when no external broker is configured, so a small station network needs
// one binary. It speaks MQTT 3.1.1 and 5, with shared subscriptions.
//
// It currently admits every client; per-gateway credentials and the topic
// ACL arrive with the security work (see docs/decisions.md).
package broker

import (
	"fmt"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Broker is a running embedded broker.
type Broker struct {
	srv  *mqtt.Server
	addr string
}

// Start listens on addr (host:port; port 0 picks a free one) and serves.
func Start(addr string, log *slog.Logger) (*Broker, error) {
	srv := mqtt.New(&mqtt.Options{Logger: log.With("component", "broker"), InlineClient: false})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, err
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("cannot listen for MQTT on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, err
	}
	return &Broker{srv: srv, addr: tcp.Address()}, nil
}

// Addr is the bound host:port.
func (b *Broker) Addr() string { return b.addr }

// URL is the address as a broker URL for clients.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Close disconnects every client and stops listening.
func (b *Broker) Close() error { return b.srv.Close() }
