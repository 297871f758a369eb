package sim_test

import (
	"math"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
	"github.com/fieldwatch/fieldwatch/test/sim"
)

// TestProfileDevicesDecode serves every shipped profile and decodes what was
// served with the gateway's decoder: each value must come back as the
// simulator meant it (within the register's resolution) and be good.
func TestProfileDevicesDecode(t *testing.T) {
	set, err := profiles.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 6, 30, 0, 0, time.UTC)
	for _, m := range set.ModbusModels() {
		p, _ := set.Get(m)
		dev := &sim.ProfileDevice{Profile: p, Seed: 1, Env: &sim.Environment{Seed: 1}}
		regs := map[modbus.Table]map[uint16]uint16{modbus.Holding: dev.Registers(now), modbus.Input: dev.InputRegisters(now)}
		for _, f := range p.Modbus.Fields {
			if f.Bits != "" {
				continue
			}
			words := make([]uint16, f.Type.Words())
			for i := range words {
				w, ok := regs[f.Table][f.Address+uint16(i)]
				if !ok {
					t.Fatalf("%s %s: register %d not served", m, f.Metric, f.Address+uint16(i))
				}
				words[i] = w
			}
			got, bad := f.Decode(words)
			want := dev.Value(f, now)
			if math.Abs(got-want) > math.Abs(f.Scale)/2+1e-6*math.Abs(want)+1e-9 || bad != "" {
				t.Errorf("%s %s: decoded %v (%s), served %v", m, f.Metric, got, bad, want)
			}
		}
	}
}
