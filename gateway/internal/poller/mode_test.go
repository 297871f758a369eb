package poller

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// analyzerProfile is a COD analyzer with a value and a work state register
// coded as HJ 212-2017 table B.10 codes i12001.
const analyzerProfile = `model: acme/cod
name: COD analyzer
kind: modbus
modbus:
  defaults: {unit: 1, baud: 9600}
  fields:
    - {metric: cod, address: 0, scale: 0.1, unit: mg/L}
    - {metric: work_state, address: 1}
  status:
    metric: work_state
    modes: {1: maintenance, 3: calibration, 8: calibration, 9: stopped, 10: maintenance}
tests:
  - name: t
    exchanges:
      - request: 01 03 00 00 00 02 C4 0B
        response: 01 03 04 01 91 00 00 AA 22
    expect: {cod: 40.1, work_state: 0}
`

// registers is a unit whose two registers the test sets.
type registers struct {
	modbus.Client
	words []uint16
}

func (r *registers) ReadRegisters(_ context.Context, _ uint8, _ modbus.Table, addr, count uint16) ([]uint16, error) {
	return slices.Clone(r.words[addr : addr+count]), nil
}

func (r *registers) Close() error { return nil }

// TestModeEvents: the work state register's value becomes a mode event
// when the mode changes (and at the first poll, whatever it is), before
// the readings of that poll; an unlisted value (2, fault) is normal.
func TestModeEvents(t *testing.T) {
	p, err := profiles.Load("acme/cod.yaml", []byte(analyzerProfile))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.RunTests(); err != nil {
		t.Fatal(err)
	}
	unit := &registers{words: []uint16{401, 0}}
	var items []string // in the order the bus hands them over
	bus := NewBus(Options{Name: "rs485", Client: unit,
		Devices: []Device{{ID: "cod-1", Profile: p, Unit: 1, Interval: time.Minute}},
		Sink: func(rs []telemetry.Reading) error {
			for _, r := range rs {
				if r.Metric == "cod" {
					items = append(items, "reading")
				}
			}
			return nil
		},
		Events: func(es []telemetry.Event) error {
			for _, e := range es {
				if err := e.Validate(); err != nil {
					t.Error(err)
				}
				items = append(items, e.Kind+" "+e.Attrs["state"]+" "+e.Attrs["source"])
			}
			return nil
		},
		Clock: func() telemetry.ClockQuality { return telemetry.ClockNTP },
		Log:   slog.New(slog.DiscardHandler), Metrics: NewMetrics(prometheus.NewRegistry())})
	for _, state := range []uint16{0, 0, 1, 1, 3, 8, 2, 9, 0} {
		unit.words[1] = state
		if _, st, err := bus.ReadOnce(context.Background(), "cod-1"); err != nil || st.Health != HealthOK {
			t.Fatalf("%v %s", err, st.Health)
		}
	}
	want := []string{
		"mode normal register", "reading", // the first poll says it, whatever it is
		"reading",
		"mode maintenance register", "reading", "reading",
		"mode calibration register", "reading", "reading", // 3 and 8 are both calibration
		"mode normal register", "reading", // 2 (fault) is no mode
		"mode stopped register", "reading",
		"mode normal register", "reading",
	}
	if !slices.Equal(items, want) {
		t.Fatalf("items\n got %q\nwant %q", items, want)
	}
}
