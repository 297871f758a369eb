package app

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/cloud/internal/hj212listen"
	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestHJ212WarningOnce: a real-time upload over a pH threshold fires one
// early warning in the real engine; the same frame sent twice more (a
// logger that missed the answers) is answered each time and changes
// nothing: one alert, one transition in its history.
func TestHJ212WarningOnce(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(`rules:
  - id: ph_high
    kind: threshold
    standard: "test"
    input: {metric: water_ph}
    labels: {alertname: PHHigh}
    levels:
      - {severity: orange, op: ">", set: 9, clear: 8.5}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	const mn = "010000A8900016F000169DC0"
	hjAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	httpAddr := startCloud(t, func(cfg *config.Config) {
		cfg.Alerting.Packs, cfg.Alerting.Rules = []string{}, rules
		cfg.HJ212.Listen = hjAddr
		cfg.HJ212.Loggers = []hj212listen.Logger{{MN: mn, PW: "123456", Station: "outfall-1"}}
	}, nil)
	now := time.Now().Truncate(time.Second)
	p := hj212.Packet{QN: hj212.QN(now, hj212.Beijing), ST: hj212.STSurfaceWaterSrc, CN: hj212.CNRealtime, PW: "123456",
		MN: mn, Flag: hj212.MakeFlag(hj212.Version2017, false, true),
		CP: hj212.CP{{{Name: "DataTime", Value: hj212.FormatTime(now, hj212.Beijing)}}, hj212.FactorItem("w01001", "Rtd", "9.6", "Flag", "N")}}
	frame, err := p.Frame()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", hjAddr, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	rd := hj212.NewReader(c)
	for i := range 3 {
		c.Write(frame)
		if a, err := rd.ReadPacket(); err != nil || a.CN != hj212.CNDataResponse || a.QN != p.QN {
			t.Fatalf("answer %d: %+v %v", i, a, err)
		}
	}
	var alerts []struct{ Fingerprint, State string }
	if err := testenv.GetJSON("http://"+httpAddr+"/api/v1/alerts?state=all", &alerts); err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].State != "firing" {
		t.Fatalf("alerts %+v, want one firing", alerts)
	}
	var hist []struct{ From, To string }
	if err := testenv.GetJSON("http://"+httpAddr+"/api/v1/alerts/history?station=outfall-1", &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].To != "firing" {
		t.Fatalf("history %+v, want one transition to firing", hist)
	}
}
