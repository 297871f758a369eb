package testenv

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func TestMosquittoStartsAndStops(t *testing.T) {
	m := StartMosquitto(t)
	c, err := net.Dial("tcp", m.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	m.Stop()
	if c, err := net.Dial("tcp", m.Addr); err == nil {
		c.Close()
		t.Fatal("broker still listening after Stop")
	}
	m.Start(t)
}

func TestInfluxDBServesFlux(t *testing.T) {
	db := StartInfluxDB(t)
	out, err := db.query("SHOW DATABASES")
	if err != nil || !strings.Contains(out, `"db"`) {
		t.Fatalf("database not created: %v %s", err, out)
	}
}

func TestMosquittoWithUsersAndTLS(t *testing.T) {
	ca := NewCA(t, "test CA")
	srv := ca.Server(t, "broker")
	m := StartMosquittoWith(t, MosquittoOptions{Users: map[string]string{"gw1": "right"},
		TLS: &MosquittoTLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, CAFile: ca.CertFile,
			RequireCertificate: true, UseIdentityAsUsername: true}})
	opts := func(url, user, pw string) *mqtt.ClientOptions {
		return mqtt.NewClientOptions().AddBroker(url).SetClientID("c-" + user).SetUsername(user).SetPassword(pw)
	}
	if err := MQTTRefused(t, opts(m.URL, "gw1", "right")); err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if err := MQTTRefused(t, opts(m.URL, "gw1", "wrong")); err == nil {
		t.Fatal("wrong password admitted")
	}
	client := ca.Client(t, "gw1")
	withCert := opts(m.TLSURL, "", "").SetTLSConfig(&tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{client.TLS}})
	if err := MQTTRefused(t, withCert); err != nil {
		t.Fatalf("client certificate refused: %v", err)
	}
	noCert := opts(m.TLSURL, "gw1", "right").SetTLSConfig(&tls.Config{RootCAs: ca.Pool})
	if err := MQTTRefused(t, noCert); err == nil {
		t.Fatal("client without a certificate admitted")
	}
}

// TestFreePortNeverTwice: the ports of a cluster are chosen before any of
// its nodes binds one, so FreePort must not hand out a port twice. 2 000
// draws from the ~22 000 below the ephemeral range would repeat one with
// near certainty if it did (a node of TestClusterAlertMoves once got
// another's port).
func TestFreePortNeverTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 2000 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
