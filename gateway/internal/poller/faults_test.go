package poller

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestFaultsAreCountedPerUnit puts a unit with a bad CRC, one answering
// exceptions, one answering the wrong function and a healthy one on a line,
// polls each five times, and checks each unit's counters and that each
// problem was logged once for the burst, not once per poll.
func TestFaultsAreCountedPerUnit(t *testing.T) {
	var logs testenv.LogBuffer
	bus, srv, _ := rs485Line(t, 4, func(o *Options) {
		o.Log = slog.New(slog.NewTextHandler(&logs, nil))
		o.Retries = 1
	})
	srv.SetFault(1, sim.Fault{CRCEvery: 1})
	srv.SetFault(2, sim.Fault{Exception: 4})
	srv.SetFault(3, sim.Fault{WrongFunction: true})
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		for _, id := range []string{"u01", "u02", "u03", "u04"} {
			bus.ReadOnce(ctx, id)
		}
	}
	st := map[uint8]DeviceStatus{}
	for _, s := range bus.Status() {
		st[s.Unit] = s
	}
	if s := st[1]; s.Stats.CRCErrors == 0 || s.Stats.CRCErrors != s.Stats.Requests || s.Health != HealthFailing {
		t.Errorf("unit 1 (bad CRC): %+v", s)
	}
	if s := st[2]; s.Stats.Exceptions[4] == 0 || s.Health != HealthFailing {
		t.Errorf("unit 2 (exceptions): %+v", s)
	}
	if s := st[3]; s.Stats.OtherErrors == 0 || s.Health != HealthFailing {
		t.Errorf("unit 3 (wrong function): %+v", s)
	}
	if s := st[4]; s.Health != HealthOK || s.Stats.Requests == 0 || s.Stats.Timeouts+s.Stats.CRCErrors+s.Stats.OtherErrors != 0 {
		t.Errorf("unit 4 (healthy): %+v", s)
	}
	for _, s := range st {
		if s.Health == HealthQuarantined {
			t.Errorf("unit %d answered and was quarantined", s.Unit)
		}
	}
	if n := counter(bus.m.errors.WithLabelValues("rs485", "u01", "crc")); n == 0 {
		t.Error("crc not counted in metrics")
	}
	if n := counter(bus.m.exceptions.WithLabelValues("rs485", "u02", "4")); n == 0 {
		t.Error("exception 4 not counted in metrics")
	}
	out := logs.String()
	for _, id := range []string{"u01", "u02", "u03"} {
		if n := strings.Count(out, "device does not answer correctly\" bus=rs485 device="+id+" "); n != 1 {
			t.Errorf("%s logged %d times in 5 failing polls; want once per burst:\n%s", id, n, out)
		}
	}
	// Unit 1 recovers: that is logged once, and a new burst logs again.
	srv.SetFault(1, sim.Fault{})
	bus.ReadOnce(ctx, "u01")
	srv.SetFault(1, sim.Fault{CRCEvery: 1})
	bus.ReadOnce(ctx, "u01")
	out = logs.String()
	if strings.Count(out, "device answers again\" bus=rs485 device=u01") != 1 ||
		strings.Count(out, "device does not answer correctly\" bus=rs485 device=u01 ") != 2 {
		t.Errorf("recovery and second burst not logged as such:\n%s", out)
	}
}
