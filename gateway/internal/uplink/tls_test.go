package uplink

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// shippedACL is the ACL Fieldwatch ships for Mosquitto.
func shippedACL(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../../deploy/mosquitto/acl")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// loadUplink loads a gateway config whose uplink section is uplink, as the
// gateway would (files read, username defaulted).
func loadUplink(t *testing.T, id, uplink string) config.Uplink {
	t.Helper()
	body := fmt.Sprintf("gateway: {id: %s}\nbuffer: {dir: /tmp/x}\n"+
		"mqtt_sources: [{id: cs, profile: chirpstack/soil-sensor, brokers: [\"tcp://127.0.0.1:1\"], topic: a}]\nuplink:\n%s", id, uplink)
	c, err := config.Load("gateway.yaml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return c.Uplink
}

// TestTLSClientCertificate sends readings over TLS with a client
// certificate to Mosquitto running the shipped ACL, its TLS listener taking
// the certificate's CN as the user name: they arrive and are acknowledged.
// A client without a certificate, with one from another CA, or trusting
// another CA for the broker does not get in.
func TestTLSClientCertificate(t *testing.T) {
	ca := testenv.NewCA(t, "fieldwatch CA")
	rogue := testenv.NewCA(t, "rogue CA")
	srv := ca.Server(t, "broker")
	m := testenv.StartMosquittoWith(t, testenv.MosquittoOptions{
		Users: map[string]string{"fieldwatch-cloud": "cloud-pw"}, ACL: shippedACL(t),
		TLS: &testenv.MosquittoTLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, CAFile: ca.CertFile,
			RequireCertificate: true, UseIdentityAsUsername: true}})

	// The cloud, on the plain listener with its password, acks every batch.
	var mu sync.Mutex
	got := map[string]int{} // gateway → readings
	defs := &telemetry.MemoryContexts{}
	cloud := testenv.MQTTConnect(t, mqtt.NewClientOptions().AddBroker(m.URL).SetClientID("cloud").
		SetUsername("fieldwatch-cloud").SetPassword("cloud-pw"))
	cloud.Subscribe(telemetry.SharedUpFilter, 1, func(c mqtt.Client, msg mqtt.Message) {
		b, def, err := decodeAny(msg.Payload(), "farm-north", defs)
		if def != nil {
			defs.Put(def)
		}
		if err != nil {
			t.Errorf("malformed batch: %v", err)
			return
		}
		mu.Lock()
		got[b.Gateway] += len(b.Readings)
		mu.Unlock()
		ack, _ := telemetry.EncodeAck(telemetry.Ack{Stream: b.Stream, First: b.FirstSeq, Last: b.LastSeq()})
		c.Publish(telemetry.AckTopic(b.Gateway), 1, false, ack)
	}).Wait()

	client := ca.Client(t, "farm-north")
	cfg := loadUplink(t, "farm-north", fmt.Sprintf("  brokers: [%q]\n  batch_delay: 20ms\n  tls: {ca_file: %s, cert_file: %s, key_file: %s}\n",
		m.TLSURL, ca.CertFile, client.CertFile, client.KeyFile))
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir(), Fsync: buffer.FsyncOff})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	up, err := New(Options{Config: cfg, Gateway: "farm-north", Buffer: buf, State: func() telemetry.State { return telemetry.State{} },
		Log: slog.New(slog.DiscardHandler), Metrics: NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- up.Run(ctx) }()
	defer func() { cancel(); <-done }()
	rs := make([]telemetry.Reading, 50)
	for i := range rs {
		rs[i] = telemetry.Reading{Device: "d", Metric: "m", Value: float64(i), Time: t0.Add(time.Duration(i) * time.Second)}
	}
	if _, err := buf.Append(rs); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "readings acked over TLS", wait, func() bool { return buf.Stats().Readings == 0 })
	mu.Lock()
	if got["farm-north"] != 50 {
		t.Fatalf("cloud received %v, want 50 readings from farm-north", got)
	}
	mu.Unlock()

	// The same tls.Config the uplink uses, with pieces missing or wrong.
	refused := func(name string, c *tls.Config) {
		t.Helper()
		opts := mqtt.NewClientOptions().AddBroker(m.TLSURL).SetClientID(name).SetUsername("farm-north").
			SetPassword("anything").SetTLSConfig(c).SetConnectTimeout(10 * time.Second)
		// Under TLS 1.3 the client may see the broker's refusal of its
		// certificate as an alert or as a reset connection.
		if err := testenv.MQTTRefused(t, opts); err == nil {
			t.Errorf("%s: connected; want refused", name)
		}
	}
	noCert := tlsConfig(loadUplink(t, "farm-north", fmt.Sprintf("  brokers: [%q]\n  tls: {ca_file: %s}\n", m.TLSURL, ca.CertFile)))
	refused("no client certificate", noCert)
	fake := rogue.Client(t, "farm-north")
	refused("certificate from another CA", tlsConfig(loadUplink(t, "farm-north", fmt.Sprintf("  brokers: [%q]\n  tls: {ca_file: %s, cert_file: %s, key_file: %s}\n",
		m.TLSURL, ca.CertFile, fake.CertFile, fake.KeyFile))))
	refused("broker not trusted", tlsConfig(loadUplink(t, "farm-north", fmt.Sprintf("  brokers: [%q]\n  tls: {ca_file: %s, cert_file: %s, key_file: %s}\n",
		m.TLSURL, rogue.CertFile, client.CertFile, client.KeyFile))))
	refused("wrong server name", tlsConfig(loadUplink(t, "farm-north", fmt.Sprintf("  brokers: [%q]\n  tls: {ca_file: %s, cert_file: %s, key_file: %s, server_name: evil.example}\n",
		m.TLSURL, ca.CertFile, client.CertFile, client.KeyFile))))
	if tlsConfig(loadUplink(t, "farm-north", "  brokers: [\"tcp://127.0.0.1:1883\"]\n")) != nil {
		t.Error("a plain broker got a TLS config")
	}
}
