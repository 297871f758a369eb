package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/test/sim"
)

// rs485 is a simulated line at 4800 baud with a Renke soil probe at unit 1
// and a Renke air sensor at unit 2, as a technician finds them in the field.
func rs485(t *testing.T) (*sim.RTUServer, *sim.Bus) {
	t.Helper()
	env := &sim.Environment{Seed: 5}
	bus := sim.NewBus()
	bus.AddUnit(1, &sim.SoilProbe{Env: env}, 4800)
	bus.AddUnit(2, &sim.AirSensor{Env: env}, 4800)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := sim.ServeRTU(ctx, bus, serialport.Mode{Baud: 4800})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); srv.Wait() })
	return srv, bus
}

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestProbeFindsUnitsBaudAndProfiles(t *testing.T) {
	srv, _ := rs485(t)
	// The default reply timeout at each baud (100 ms and 20 characters): a
	// shorter one made a slow moment of a loaded machine look like a
	// profile the unit does not answer.
	code, out, errOut := run(t, "probe", "-port", srv.Path, "-bauds", "9600,4800", "-units", "1-4")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "at 9600 8N1: 0 unit(s) answer of 4 tried") || !strings.Contains(errOut, "at 4800 8N1: 2 unit(s) answer") {
		t.Fatalf("progress:\n%s", errOut)
	}
	lines := strings.Split(out, "\n")
	first := func(unit string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, unit+" ") {
				return l
			}
		}
		return ""
	}
	if l := first("1"); !strings.Contains(l, "4800") || !strings.Contains(l, "renke/rs-ecth-n01  ") ||
		!strings.Contains(l, "3/3 plausible; factory baud, address") || !strings.Contains(l, "soil_moisture") {
		t.Fatalf("unit 1 line %q in:\n%s", l, out)
	}
	if l := first("2"); !strings.Contains(l, "renke/rs-ws-n01-8  ") || !strings.Contains(l, "air_humidity") {
		t.Fatalf("unit 2 line %q in:\n%s", l, out)
	}
}

func TestProbeNothing(t *testing.T) {
	srv, _ := rs485(t)
	code, out, _ := run(t, "probe", "-port", srv.Path, "-bauds", "9600", "-units", "5-6", "-timeout", "50ms")
	if code != ExitFail || !strings.Contains(out, "no unit answered") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestRead(t *testing.T) {
	srv, _ := rs485(t)
	code, out, errOut := run(t, "read", "-port", srv.Path, "-profile", "renke/rs-ecth-n01")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"renke/rs-ecth-n01 unit 1", "at 4800 8N1", "soil_moisture", "soil_temperature", "°C", "good", "holding 0x0002"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// At the wrong address every value fails, and the exit code says so.
	code, out, _ = run(t, "read", "-port", srv.Path, "-profile", "renke/rs-ecth-n01", "-unit", "9", "-timeout", "50ms")
	if code != ExitFail || !strings.Contains(out, "FAILED: timeout") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestSetAddressAndBaud(t *testing.T) {
	srv, bus := rs485(t)
	// Without -yes nothing is written.
	code, out, _ := run(t, "set", "-port", srv.Path, "-profile", "renke/rs-ecth-n01", "-new-unit", "9")
	if code != ExitOK || !strings.Contains(out, "write 9 to holding register 0x07D0 with FC06") || !strings.Contains(out, "not written") {
		t.Fatalf("dry run: %d\n%s", code, out)
	}
	if _, ok := bus.Units()[9]; ok {
		t.Fatal("a dry run wrote")
	}
	code, out, errOut := run(t, "set", "-port", srv.Path, "-profile", "renke/rs-ecth-n01", "-new-unit", "9", "-yes")
	if code != ExitOK || !strings.Contains(out, "done: the unit answers at address 9, 4800 baud") {
		t.Fatalf("set address: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = run(t, "set", "-port", srv.Path, "-profile", "renke/rs-ecth-n01", "-unit", "9", "-new-baud", "9600", "-yes")
	if code != ExitOK || !strings.Contains(out, "done: the unit answers at address 9, 9600 baud") {
		t.Fatalf("set baud: %d\n%s\n%s", code, out, errOut)
	}
	if units := bus.Units(); units[9] != 9600 {
		t.Fatalf("simulated units now %v", units)
	}
	code, _, errOut = run(t, "set", "-port", srv.Path, "-profile", "renke/rs-ecth-n01", "-unit", "9", "-baud", "9600", "-new-baud", "115200")
	if code != ExitUsage || !strings.Contains(errOut, "supports the baud rates [2400 4800 9600]") {
		t.Fatalf("unsupported baud: %d %s", code, errOut)
	}
}

func TestPortsAndUsage(t *testing.T) {
	if code, out, errOut := run(t, "ports"); code != ExitOK {
		t.Fatalf("ports: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := run(t, "read", "-port", "/dev/x", "-tcp", "h:1", "-profile", "renke/rs-ecth-n01"); code != ExitUsage ||
		!strings.Contains(errOut, "name exactly one bus") {
		t.Fatalf("two targets: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, "nonsense"); code != ExitUsage || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: %d %s", code, errOut)
	}
}
