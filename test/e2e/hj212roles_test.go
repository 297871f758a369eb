package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestHJ212BothRoles runs both binaries in both HJ 212 roles: the gateway
// reports an air sensor to the cloud over MQTT and, as a data logger, to the
// cloud's own HJ 212 listener under a second station. A relay between them
// watches the answers: once the cloud has answered 9014 to real-time
// frames — which it does only once they are stored — the HJ 212 station
// shows the sensor's values as good readings, and the cloud refused
// nothing.
func TestHJ212BothRoles(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	srv := sim.NewServer(nil)
	srv.AddUnit(10, &sim.AirSensor{Env: &sim.Environment{Seed: 3}})
	simAddr := sim.Listen(t, srv)
	dir := t.TempDir()
	const mn = "010000A8900016F000169DC1"
	pwFile := filepath.Join(dir, "logger.pw")
	os.WriteFile(pwFile, []byte("123456\n"), 0o600)
	hjAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cloudHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cloudCfg := filepath.Join(dir, "cloud.yaml")
	os.WriteFile(cloudCfg, []byte(fmt.Sprintf(`hj212:
  listen: "%s"
  loggers:
    - {mn: %s, pw_file: %s, station: roof-hj212, device: logger}
`, hjAddr, mn, pwFile)), 0o600)
	cloud := start(t, "fieldwatch-cloud", "run", "-c", cloudCfg, "-mqtt-url", mosq.URL, "-http", cloudHTTP,
		"-data", t.TempDir())
	waitHealthy(t, cloudHTTP)

	answers := relay(t, hjAddr)
	gwHTTP := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	gwCfg := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(gwCfg, []byte(fmt.Sprintf(`gateway: {id: roof-gw, clock: ntp}
uplink: {brokers: [%s]}
buffer: {dir: %s, fsync: always}
http: {listen: %s}
buses:
  - name: rs485
    type: tcp
    address: %s
    devices:
      - {id: air-1, profile: renke/rs-ws-n01-8, unit: 10, interval: 1s}
hj212_uplinks:
  - {address: "%s", mn: %s, pw_file: %s, st: "22"}
`, mosq.URL, filepath.Join(dir, "buf"), gwHTTP, simAddr, answers.addr, mn, pwFile)), 0o600)
	gw := start(t, "fieldwatch-gateway", "run", "-c", gwCfg)

	limit := time.NewTimer(60 * time.Second)
	defer limit.Stop()
	for n := 0; n < 3; {
		select {
		case a := <-answers.c:
			if a.CN != hj212.CNDataResponse {
				t.Fatalf("the cloud answered %+v", a)
			}
			n++
		case <-limit.C:
			t.Fatal("fewer than 3 frames answered by the cloud")
		}
	}
	var latest []struct {
		Device, Metric, Unit, Quality string
		Value                         *float64
	}
	if err := testenv.GetJSON("http://"+cloudHTTP+"/api/v1/latest?station=roof-hj212", &latest); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"air_temperature": "°C", "air_humidity": "%"}
	for _, s := range latest {
		if unit, ok := want[s.Metric]; !ok || s.Unit != unit || s.Quality != "good" || s.Value == nil || s.Device != "logger" {
			t.Errorf("series %+v (value %v)", s, s.Value)
		}
		delete(want, s.Metric)
	}
	if len(want) > 0 {
		t.Errorf("missing from the HJ 212 station: %v", want)
	}
	m, err := testenv.Scrape("http://" + cloudHTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	// Duplicates are not counted against the cloud: a frame sent again (a
	// history request overlapping the real-time frames, a resend on a slow
	// machine) is answered and not stored twice, which hj212listen's own
	// tests check; here it only must not be refused.
	if m[`fieldwatch_hj212_frames_total{class="realtime"}`] < 3 {
		t.Errorf("real-time frames %v (duplicates %v)", m[`fieldwatch_hj212_frames_total{class="realtime"}`],
			m[`fieldwatch_hj212_duplicates_total`])
	}
	for series, v := range m {
		if strings.HasPrefix(series, "fieldwatch_hj212_refused_total") && v != 0 {
			t.Errorf("%s = %v", series, v)
		}
	}
	gw.Stop(t, syscall.SIGTERM)
	cloud.Stop(t, syscall.SIGTERM)
}

// relayed is a TCP relay in front of an HJ 212 platform that hands over
// every packet the platform sends.
type relayed struct {
	addr string
	c    chan hj212.Packet
}

// relay listens on loopback and forwards each connection to target, both
// ways, reading the platform's side as HJ 212 frames.
func relay(t *testing.T, target string) *relayed {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relayed{addr: ln.Addr().String(), c: make(chan hj212.Packet, 1000)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", target, 10*time.Second)
			if err != nil {
				down.Close()
				continue
			}
			go func() { io.Copy(up, down); up.Close() }()
			go func() {
				defer down.Close()
				rd := hj212.NewReader(up)
				for {
					data, err := rd.Next()
					if err != nil {
						if hj212.Kind(err) != "" {
							continue
						}
						return
					}
					p, err := hj212.DecodePacket(data)
					if err != nil {
						continue
					}
					f, _ := p.Frame()
					if _, err := down.Write(f); err != nil {
						return
					}
					select {
					case r.c <- p:
					default:
					}
				}
			}()
		}
	}()
	return r
}
