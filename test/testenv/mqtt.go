package testenv

import (
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// MQTTClient connects a paho client with the given id to url (failing the
// test if it cannot within 10 s) and disconnects it when the test ends.
func MQTTClient(t testing.TB, url, id string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(id))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT client %s cannot connect to %s: %v", id, url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// MQTTConnect connects a paho client with opts (failing the test if it
// cannot within 10 s) and disconnects it when the test ends.
func MQTTConnect(t testing.TB, opts *mqtt.ClientOptions) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT client %s cannot connect to %v: %v", opts.ClientID, opts.Servers, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// MQTTRefused tries to connect with opts and returns the broker's refusal,
// or nil if it let the client in (the client is then disconnected).
func MQTTRefused(t testing.TB, opts *mqtt.ClientOptions) error {
	t.Helper()
	c := mqtt.NewClient(opts.SetAutoReconnect(false).SetConnectRetry(false))
	tok := c.Connect()
	if !tok.WaitTimeout(20 * time.Second) {
		t.Fatalf("MQTT client %s: no answer from %v in 20s", opts.ClientID, opts.Servers)
	}
	if tok.Error() == nil {
		c.Disconnect(100)
	}
	return tok.Error()
}
