package testenv

import (
	"net"
	"strings"
	"testing"
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
