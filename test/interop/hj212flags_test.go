package interop

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// wasteWaterProfile is a waste water outlet's flow meter and COD analyzer
// behind one Modbus unit (a profile in the gateway's profiles_dir), with
// the analyzer's work state register coded as HJ 212-2017 table B.10
// (i12001).
const wasteWaterProfile = `model: acme/outlet
name: Outlet flow and COD
kind: modbus
modbus:
  defaults: {unit: 1, baud: 9600}
  fields:
    - {metric: wastewater_flow, address: 0, scale: 0.1, unit: L/s, range: [0, 500]}
    - {metric: cod, address: 1, scale: 0.1, unit: mg/L, range: [0, 1000]}
    - {metric: work_state, address: 2}
  status:
    metric: work_state
    modes: {1: maintenance, 3: calibration, 9: stopped}
tests:
  - name: t
    exchanges:
      - request: 01 03 00 00 00 03 05 CB
        response: 01 03 06 00 AF 01 91 00 00 A5 7C
    expect: {wastewater_flow: 17.5, cod: 40.1, work_state: 0}
`

// outlet is the unit: 17.5 L/s, COD 40.1 mg/L, its work state as the test
// sets it.
type outlet struct{ state atomic.Uint32 }

func (o *outlet) Registers(time.Time) map[uint16]uint16 {
	return map[uint16]uint16{0: 175, 1: 401, 2: uint16(o.state.Load())}
}

// TestOurGatewayFlagsAndCouToPeer: the real gateway binary reports a waste
// water outlet to the independent peer platform, real-time and 1-minute
// data. The analyzer's work state register goes to maintenance and back:
// the real-time frames' flags go N, M, N, each a letter of table 8 as the
// peer reads it; minute data carry Cou for the flow (m³) and COD (kg), and
// by the peer's own reading of appendix D the flow-weighted COD (formula
// 12, G / D × 10³) is the analyzer's 40.1 mg/L and the flow's Cou is never
// more than its average over the period (formulas 1, 5); the minute
// holding the maintenance is flagged M.
func TestOurGatewayFlagsAndCouToPeer(t *testing.T) {
	addr, lines := startPeerPlatform(t, "--min-interval", "1")

	unit := &outlet{}
	srv := sim.NewServer(nil)
	srv.AddUnit(1, unit)
	simAddr := sim.Listen(t, srv)
	dir := t.TempDir()
	profDir := filepath.Join(dir, "profiles", "acme")
	os.MkdirAll(profDir, 0o755)
	if err := os.WriteFile(filepath.Join(profDir, "outlet.yaml"), []byte(wasteWaterProfile), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`gateway: {id: outlet-gw, clock: ntp}
uplink: {brokers: ["tcp://127.0.0.1:%d"]}
buffer: {dir: %s, fsync: "off"}
http: {listen: ""}
profiles_dir: %s
buses:
  - name: rs485
    type: tcp
    address: %s
    devices:
      - {id: outlet-1, profile: acme/outlet, unit: 1, interval: 1s}
hj212_uplinks:
  - address: "%s"
    mn: %s
    pw: "%s"
    st: "32"
    factors: {wastewater_flow: w00000, cod: w01018}
    minute: true
    minute_interval: 1m
    aggregate_delay: 1s
`, testenv.FreePort(t), filepath.Join(dir, "buf"), filepath.Join(dir, "profiles"), simAddr, addr, mn, pw)), 0o600)
	testenv.StartBinary(t, filepath.Join(bins, "fieldwatch-gateway"), "run", "-c", cfg)

	type rec struct {
		CN     string                        `json:"cn"`
		Data   map[string]map[string]string  `json:"data"`
		Checks map[string]map[string]float64 `json:"checks"`
		Ref    string                        `json:"refused"`
	}
	// The real-time flags in the order they come, without repeats: the
	// test moves the work state on as each is seen.
	var flags []string
	sawMaintenanceMinute := false
	limit := time.After(150 * time.Second) // the maintenance's minute must end
	for !(len(flags) >= 3 && sawMaintenanceMinute) {
		var l string
		select {
		case l = <-lines:
			if l == "" {
				t.Fatal("the peer platform stopped")
			}
		case <-limit:
			t.Fatalf("real-time flags %v, a minute flagged M: %v", flags, sawMaintenanceMinute)
		}
		var r rec
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Ref != "" {
			t.Fatalf("the peer refused or could not read: %s", l)
		}
		switch r.CN {
		case "2011":
			flow, cod := r.Data["w00000"], r.Data["w01018"]
			if flow["Flag"] != cod["Flag"] || flow["Rtd"] != "17.50" || cod["Rtd"] != "40.1" {
				t.Fatalf("real-time %v: one device, one flag; values in the table's decimals", r.Data)
			}
			if n := len(flags); n == 0 || flags[n-1] != flow["Flag"] {
				flags = append(flags, flow["Flag"])
				switch len(flags) {
				case 1:
					unit.state.Store(1) // maintenance
				case 2:
					unit.state.Store(0)
				}
			}
		case "2051":
			flow, cod := r.Data["w00000"], r.Data["w01018"]
			if flow["Flag"] == "M" {
				sawMaintenanceMinute = true
			}
			if _, ok := flow["Cou"]; !ok {
				if flow["Flag"] == "N" {
					t.Errorf("minute %v: a normal flow without Cou", r.Data)
				}
				continue
			}
			covered := r.Checks["w00000"]["covered"]
			wm := r.Checks["w01018"]["weighted_mean"]
			t.Logf("minute %s: flag %s, Cou %s m³ and %s kg: covers %.4f of the minute, COD weighted %.3f mg/L",
				r.Data[""]["DataTime"], flow["Flag"], flow["Cou"], cod["Cou"], covered, wm)
			if covered <= 0 || covered > 1.0001 || math.Abs(wm-40.1) > 0.05 || cod["Avg"] != "40.1" {
				t.Errorf("minute %v: the peer finds the flow's Cou covering %.4f of the period (want (0, 1]) and "+
					"the weighted COD %.3f mg/L (want 40.1)", r.Data, covered, wm)
			}
		}
	}
	if want := []string{"N", "M", "N"}; strings.Join(flags[:3], "") != strings.Join(want, "") {
		t.Fatalf("real-time flags %v, want %v", flags, want)
	}
}
