package profiles

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
)

// RunTests replays every test vector of p through the gateway's Modbus
// client and decoder and reports each mismatch. The planned requests must
// equal the recorded ones byte for byte, so a profile also pins down how the
// gateway reads the device.
func (p *Profile) RunTests() error {
	if p.Modbus == nil {
		return p.runStreamTests()
	}
	fields := p.Modbus.Fields
	plan := modbus.Plan(fields, p.Modbus.MaxGap, 0)
	var errs []error
	for _, t := range p.Tests {
		if err := runTest(t, p.Modbus.Defaults.Unit, fields, plan); err != nil {
			errs = append(errs, fmt.Errorf("%s: test %q: %w", p.file, t.Name, err))
		}
	}
	return errors.Join(errs...)
}

func runTest(t Test, unit int, fields []modbus.Field, plan []modbus.Request) error {
	if t.Unit != 0 {
		unit = t.Unit
	}
	if len(t.Exchanges) != len(plan) {
		return fmt.Errorf("the gateway reads this profile with %d request(s), the test records %d", len(plan), len(t.Exchanges))
	}
	got := map[string]modbus.Value{}
	for i, req := range plan {
		ex := t.Exchanges[i]
		words, err := modbus.ReplayRTU(uint8(unit), req.Table, req.Address, req.Count, ex.Request, ex.Response)
		if err != nil {
			return fmt.Errorf("exchange %d: %w", i+1, err)
		}
		for _, v := range req.Decode(fields, words) {
			got[fields[v.Field].Metric] = v
		}
	}
	var errs []error
	for metric, want := range t.Expect {
		v := got[metric]
		if !close(v.Value, want) {
			errs = append(errs, fmt.Errorf("%s = %v, want %v", metric, v.Value, want))
		}
		if wantBad := slices.Contains(t.Bad, metric); wantBad != (v.Bad != "") {
			errs = append(errs, fmt.Errorf("%s: bad = %q, want bad %v", metric, v.Bad, wantBad))
		}
	}
	return errors.Join(errs...)
}

func close(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}
