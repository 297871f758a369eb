package app

import (
	"encoding/hex"
	"net"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/protocols/sl651"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestSL651Station runs the cloud with an SL 651 listener: the published
// timed report is confirmed, its values are served by /api/v1/latest under
// the configured station, and the listener stops with the cloud.
func TestSL651Station(t *testing.T) {
	a, _ := runCloud(t, func(cfg *config.Config) {
		cfg.Ingest.MaxFuture = 365 * 24 * time.Hour
		cfg.SL651.Listen, cfg.SL651.Central = "127.0.0.1:0", 5
		cfg.SL651.Stations = []config.SL651Station{{Address: "0011223344", Station: "hydro-1", Site: "river"}}
	}, nil)
	if a.SL651 == "" {
		t.Fatal("no SL 651 address")
	}
	c, err := net.DialTimeout("tcp", a.SL651, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	frame, _ := hex.DecodeString("7E7E05001122334403E832002B020034170718110016F1F1001122334448F0F01707181100201900004026190000403923000104903812109903A421")
	c.Write(frame)
	cf, err := sl651.NewReader(c).Next()
	if err != nil || !cf.Down || cf.Function != sl651.FnTimed {
		t.Fatalf("confirmation %+v %v", cf, err)
	}
	// Stored before it was confirmed: the API has it now.
	var latest []store.Sample
	if err := testenv.GetJSON("http://"+a.HTTP+"/api/v1/latest?station=hydro-1", &latest); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range latest {
		if s.Gateway == "hydro-1" && s.Value != nil {
			got[s.Metric] = *s.Value
		}
	}
	want := map[string]float64{"rainfall": 4, "rainfall_current": 4, "water_level": 10.49, "supply_voltage": 10.99}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (latest %+v)", k, got[k], v, latest)
		}
	}
}
