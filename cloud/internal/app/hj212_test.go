package app

import (
	"net"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/cloud/internal/hj212listen"
	"github.com/fieldwatch/fieldwatch/protocols/hj212"
)

// TestHJ212WarningOnce: a real-time upload over a pH threshold fires one
// early warning in the real engine; the same frame sent twice more (a
// logger that missed the answers) is answered each time and changes
// nothing: one alert, one transition in its history.
func TestHJ212WarningOnce(t *testing.T) {
	rules := thresholdRule(t, "water_ph", 9, 8.5)
	const mn = "010000A8900016F000169DC0"
	a, _ := runCloud(t, func(cfg *config.Config) {
		cfg.Alerting.Packs, cfg.Alerting.Rules = []string{}, rules
		cfg.HJ212.Listen = "127.0.0.1:0"
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
	c, err := net.DialTimeout("tcp", a.HJ212, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	rd := hj212.NewReader(c)
	for i := range 3 {
		c.Write(frame)
		if ans, err := rd.ReadPacket(); err != nil || ans.CN != hj212.CNDataResponse || ans.QN != p.QN {
			t.Fatalf("answer %d: %+v %v", i, ans, err)
		}
	}
	oneWarning(t, a.HTTP, "outfall-1")
}
