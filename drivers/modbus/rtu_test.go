package modbus_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

var env = &sim.Environment{Seed: 3}

// patient is the response timeout of clients whose test is not about
// timeouts: a live unit answers within it however loaded the machine is.
const patient = time.Minute

// line starts a simulated RS485 line at 9600 8N1 with a soil probe at unit
// 1, another at unit 2 and an air sensor at unit 10, and an RTU client on it.
func line(t *testing.T, timeout time.Duration) (*sim.RTUServer, modbus.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	bus := sim.NewBus()
	bus.AddUnit(1, &sim.SoilProbe{Env: env}, 9600)
	bus.AddUnit(2, &sim.SoilProbe{Env: env, Probe: 1}, 9600)
	bus.AddUnit(10, &sim.AirSensor{Env: env}, 9600)
	mode := serialport.Mode{Baud: 9600}
	srv, err := sim.ServeRTU(ctx, bus, mode)
	if err != nil {
		t.Fatal(err)
	}
	c := modbus.NewRTU(srv.Path, modbus.RTUOptions{Mode: mode, Timeout: timeout})
	t.Cleanup(func() { c.Close(); cancel(); srv.Wait() })
	return srv, c
}

// giveUp makes one request to unit on srv's line with a client of its own
// whose timeout is short, closes that client, and returns the request's
// error. Then it waits until the simulator has taken the request and the
// line has fallen quiet: the simulator dates bytes when it reads them, so on
// a loaded machine the next request, sent right after the timeout, could
// otherwise seem to follow this one without the 3.5-character silence and
// be ignored as a collision.
func giveUp(t *testing.T, srv *sim.RTUServer, baud int, timeout time.Duration, unit uint8) error {
	t.Helper()
	n := srv.Requests()
	c := modbus.NewRTU(srv.Path, modbus.RTUOptions{Mode: serialport.Mode{Baud: baud}, Timeout: timeout})
	_, err := c.ReadRegisters(context.Background(), unit, modbus.Holding, 0, 3)
	c.Close()
	testenv.Eventually(t, "the simulator to take the request and the line to fall quiet", 20*time.Second,
		func() bool { return srv.Requests() > n && srv.Quiet() })
	return err
}

func TestRTUMultiDrop(t *testing.T) {
	srv, c := line(t, patient)
	ctx := context.Background()
	var reads []sim.Read
	srv.OnRead = func(r sim.Read) { reads = append(reads, r) }
	for i := 0; i < 5; i++ {
		for _, u := range []uint8{1, 2, 10} {
			count := uint16(3)
			if u == 10 {
				count = 2
			}
			words, err := c.ReadRegisters(ctx, u, modbus.Holding, 0, count)
			if err != nil {
				t.Fatalf("unit %d: %v", u, err)
			}
			last := reads[len(reads)-1]
			if last.Unit != u || len(words) != int(count) || words[0] != last.Words[0] || words[count-1] != last.Words[count-1] {
				t.Fatalf("unit %d read %v, simulator served %+v", u, words, last)
			}
		}
	}
	if n := srv.Collisions(); n != 0 {
		t.Fatalf("%d requests broke the 3.5-character silence", n)
	}
	// Input registers are another table: the soil probe has none.
	_, err := c.ReadRegisters(ctx, 1, modbus.Input, 0, 1)
	var ex *modbus.ExceptionError
	if !errors.As(err, &ex) || ex.Code != 2 {
		t.Fatalf("read of an unmapped table: %v, want exception 2", err)
	}
}

func TestRTUFaults(t *testing.T) {
	// timeout is the faulty read's response timeout. A unit that never
	// answers in time (dead; late, whose reply is held until the next
	// request) times out whatever it is. A wrong unit's frame and a short
	// frame are errors only once the timeout has run out after them, and
	// they must arrive before it does: that timeout is long enough for any
	// load. The others are told apart from the reply itself.
	tests := []struct {
		name    string
		fault   sim.Fault
		timeout time.Duration
		kind    string
		want    string
	}{
		{"dead unit", sim.Fault{Dead: true}, 100 * time.Millisecond, "timeout", "no reply from unit 1"},
		{"exception", sim.Fault{Exception: 4}, patient, "exception", "exception 4 (server device failure)"},
		{"crc", sim.Fault{CRCEvery: 1}, patient, "crc", "CRC mismatch"},
		{"garbage", sim.Fault{Garbage: true}, patient, "", ""},
		{"slow", sim.Fault{Late: true}, 100 * time.Millisecond, "timeout", "no reply"},
		{"wrong unit", sim.Fault{WrongUnit: true}, 2 * time.Second, "wrong_unit", "only unit 2 answered a request to unit 1"},
		{"wrong function", sim.Fault{WrongFunction: true}, patient, "wrong_function", "function 3 answered with 4"},
		{"short frame", sim.Fault{Short: true}, 2 * time.Second, "short_frame", "reply cut short"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := line(t, patient)
			srv.SetFault(1, tc.fault)
			ctx := context.Background()
			err := giveUp(t, srv, 9600, tc.timeout, 1)
			if err == nil {
				t.Fatal("a faulty unit read fine")
			}
			if tc.kind != "" && modbus.Kind(err) != tc.kind || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v (kind %s), want kind %s containing %q", err, modbus.Kind(err), tc.kind, tc.want)
			}
			// Whatever the faulty unit sent (or sends late: the slow unit's
			// reply comes after the first of these requests, before its
			// answer), the next unit on the line is read correctly.
			for i := 0; i < 3; i++ {
				if _, err := c.ReadRegisters(ctx, 10, modbus.Holding, 0, 2); err != nil {
					t.Fatalf("the neighbour after a %s: %v", tc.name, err)
				}
			}
			if n := srv.Held(); n != 0 {
				t.Fatalf("%d late replies never sent", n)
			}
			srv.SetFault(1, sim.Fault{})
			if _, err := c.ReadRegisters(ctx, 1, modbus.Holding, 0, 3); err != nil {
				t.Fatalf("the unit after its fault cleared: %v", err)
			}
		})
	}
}

func TestRTUWrongBaud(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bus := sim.NewBus()
	bus.AddUnit(1, &sim.SoilProbe{Env: env}, 4800)
	srv, err := sim.ServeRTU(ctx, bus, serialport.Mode{Baud: 4800})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	defer cancel()
	// At the wrong rate the unit hears noise and never answers: a short
	// timeout runs out whatever the load.
	if err := giveUp(t, srv, 9600, 100*time.Millisecond, 1); !errors.Is(err, modbus.ErrTimeout) {
		t.Fatalf("at 9600 baud: %v", err)
	}
	c := modbus.NewRTU(srv.Path, modbus.RTUOptions{Mode: serialport.Mode{Baud: 4800}, Timeout: patient})
	defer c.Close()
	if _, err := c.ReadRegisters(context.Background(), 1, modbus.Holding, 0, 3); err != nil {
		t.Fatalf("at 4800 baud: %v", err)
	}
}

func TestRTUWrites(t *testing.T) {
	srv, c := line(t, patient)
	ctx := context.Background()
	// FC06 to 0x07D0 gives unit 2 the address 7 (Renke's address register).
	if err := c.WriteRegister(ctx, 2, 0x07D0, 7); err != nil {
		t.Fatal(err)
	}
	if err := giveUp(t, srv, 9600, 100*time.Millisecond, 2); !errors.Is(err, modbus.ErrTimeout) {
		t.Fatalf("the old address still answers: %v", err)
	}
	words, err := c.ReadRegisters(ctx, 7, modbus.Holding, 0x07D0, 1)
	if err != nil || words[0] != 7 {
		t.Fatalf("the new address reads %v, %v", words, err)
	}
	// FC16 writes registers; the values read back.
	if err := c.WriteRegisters(ctx, 7, 0x0100, []uint16{11, 22, 33}); err != nil {
		t.Fatal(err)
	}
	if words, err := c.ReadRegisters(ctx, 7, modbus.Holding, 0x0100, 3); err != nil || words[2] != 33 {
		t.Fatalf("read back %v, %v", words, err)
	}
	// A value the unit refuses is an exception, not a silent success.
	var ex *modbus.ExceptionError
	if err := c.WriteRegister(ctx, 7, 0x07D1, 9); !errors.As(err, &ex) || ex.Code != 3 {
		t.Fatalf("an impossible baud code: %v", err)
	}
	// A broadcast gets no reply and no error.
	if err := c.WriteRegister(ctx, 0, 0x0200, 1); err != nil {
		t.Fatalf("broadcast: %v", err)
	}
}

// TestRTUReopensPort closes the port under the client (an unplugged USB
// adapter): the request fails as a connection error and the next one
// reopens it.
func TestRTUReopensPort(t *testing.T) {
	_, c := line(t, patient)
	ctx := context.Background()
	if _, err := c.ReadRegisters(ctx, 1, modbus.Holding, 0, 3); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := c.ReadRegisters(ctx, 1, modbus.Holding, 0, 3); err != nil {
		t.Fatalf("after close: %v", err)
	}
	bad := modbus.NewRTU("/dev/does-not-exist", modbus.RTUOptions{Mode: serialport.Mode{Baud: 9600}, Timeout: time.Second})
	if _, err := bad.ReadRegisters(ctx, 1, modbus.Holding, 0, 1); modbus.Kind(err) != "connection" {
		t.Fatalf("a missing port: %v", err)
	}
}

// TestRTUTurnaround sets a turnaround longer than 3.5 characters: the
// simulator must never see a request sooner after the previous frame.
func TestRTUTurnaround(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	bus := sim.NewBus()
	bus.AddUnit(1, &sim.SoilProbe{Env: env}, 9600)
	bus.AddUnit(2, &sim.AirSensor{Env: env}, 9600)
	mode := serialport.Mode{Baud: 9600}
	srv, err := sim.ServeRTU(ctx, bus, mode)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); srv.Wait() }()
	c := modbus.NewRTU(srv.Path, modbus.RTUOptions{Mode: mode, Timeout: patient, Turnaround: 25 * time.Millisecond})
	defer c.Close()
	for i := 0; i < 10; i++ {
		if _, err := c.ReadRegisters(context.Background(), uint8(1+i%2), modbus.Holding, 0, 2); err != nil {
			t.Fatal(err)
		}
	}
	if gap := srv.MinGap(); gap < 25*time.Millisecond {
		t.Fatalf("a request came %v after the previous frame; the turnaround is 25ms", gap)
	}
}

// TestRTUOverTCP reads units behind a simulated serial device server, and
// checks that a slow unit's late reply is skipped rather than taken for the
// next unit's.
func TestRTUOverTCP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bus := sim.NewBus()
	bus.AddUnit(1, &sim.SoilProbe{Env: env}, 0)
	bus.AddUnit(10, &sim.AirSensor{Env: env}, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { sim.ServeRTUOverTCP(ctx, bus, ln); close(done) }()
	defer func() { cancel(); <-done }()
	mode := serialport.Mode{Baud: 9600}
	c := modbus.NewRTUOverTCP(ln.Addr().String(), modbus.RTUOptions{Mode: mode, Timeout: patient})
	defer c.Close()
	if words, err := c.ReadRegisters(ctx, 1, modbus.Holding, 0, 3); err != nil || len(words) != 3 {
		t.Fatalf("read: %v %v", words, err)
	}
	bus.SetFault(1, sim.Fault{CRCEvery: 1})
	if _, err := c.ReadRegisters(ctx, 1, modbus.Holding, 0, 3); modbus.Kind(err) != "crc" {
		t.Fatalf("bad CRC: %v", err)
	}
	// The slow unit's reply is held until the next request: a client of
	// its own with a short timeout gives up on it whatever the load.
	bus.SetFault(1, sim.Fault{Late: true})
	slow := modbus.NewRTUOverTCP(ln.Addr().String(), modbus.RTUOptions{Mode: mode, Timeout: 100 * time.Millisecond})
	_, err = slow.ReadRegisters(ctx, 1, modbus.Holding, 0, 3)
	slow.Close()
	if modbus.Kind(err) != "timeout" {
		t.Fatalf("slow unit: %v", err)
	}
	testenv.Eventually(t, "the slow unit to take its request", 20*time.Second, func() bool { return bus.Held() == 1 })
	// Unit 1's reply arrives late, during this transaction (the serial
	// device server passes it on to whoever is connected): skipped.
	if _, err := c.ReadRegisters(ctx, 10, modbus.Holding, 0, 2); err != nil {
		t.Fatalf("the next unit after a late reply: %v", err)
	}
	if n := bus.Held(); n != 0 {
		t.Fatalf("the late reply was never sent (%d held)", n)
	}
	bus.SetFault(1, sim.Fault{})
	if _, err := c.ReadRegisters(ctx, 1, modbus.Holding, 0, 3); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
}
