package sim_test

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/test/sim"
)

// mbpoll runs Debian's mbpoll, an independent Modbus client, once, and
// fails the test if it fails.
func mbpoll(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runMbpoll(t, args...)
	if err != nil {
		t.Fatalf("mbpoll %v: %v\n%s", args, err, out)
	}
	return out
}

func runMbpoll(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("mbpoll")
	if err != nil {
		t.Fatal("mbpoll not found; run `make deps`")
	}
	out, err := exec.Command(bin, append([]string{"-1", "-o", "2"}, args...)...).CombinedOutput()
	return string(out), err
}

var valueRE = regexp.MustCompile(`(?m)^\[(\d+)\]:\s+(-?\d+)`)

// values parses mbpoll's "[ref]: value" lines.
func values(t *testing.T, out string) map[int]int {
	t.Helper()
	got := map[int]int{}
	for _, m := range valueRE.FindAllStringSubmatch(out, -1) {
		ref, _ := strconv.Atoi(m[1])
		v, _ := strconv.Atoi(m[2])
		got[ref] = v
	}
	if len(got) == 0 {
		t.Fatalf("no values in mbpoll's output:\n%s", out)
	}
	return got
}

type recorder struct {
	mu    sync.Mutex
	reads []sim.Read
}

func (r *recorder) add(x sim.Read) { r.mu.Lock(); r.reads = append(r.reads, x); r.mu.Unlock() }
func (r *recorder) last() sim.Read {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads[len(r.reads)-1]
}

// check compares mbpoll's view of registers 0..2 with what the simulator
// says it served.
func check(t *testing.T, got map[int]int, served sim.Read) {
	t.Helper()
	for i, w := range served.Words {
		if uint16(got[i+1]) != w {
			t.Fatalf("mbpoll read %v, the simulator served %v", got, served.Words)
		}
	}
}

// TestMbpollReadsTheRTUSimulator checks our RTU simulator against mbpoll on a
// pseudo-terminal: reads, and a write (FC06) that moves the unit's address.
func TestMbpollReadsTheRTUSimulator(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bus := sim.NewBus()
	bus.AddUnit(1, &sim.SoilProbe{Env: &sim.Environment{Seed: 9}}, 9600)
	rec := &recorder{}
	bus.OnRead = rec.add
	srv, err := sim.ServeRTU(ctx, bus, serialport.Mode{Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	defer cancel()
	rtu := []string{"-m", "rtu", "-b", "9600", "-P", "none"}
	got := values(t, mbpoll(t, append(rtu, "-a", "1", "-r", "1", "-c", "3", "-t", "4", srv.Path)...))
	check(t, got, rec.last())
	mbpoll(t, append(rtu, "-a", "1", "-r", "2001", "-t", "4", srv.Path, "5")...) // 0x07D0 := 5
	got = values(t, mbpoll(t, append(rtu, "-a", "5", "-r", "2001", "-t", "4", srv.Path)...))
	if got[2001] != 5 {
		t.Fatalf("after moving the unit, it reports address %v", got)
	}
	if n := srv.Noise(); n != 0 {
		t.Fatalf("%d of mbpoll's frames were unreadable to the simulator", n)
	}
}

// TestMbpollReadsTheTCPSimulator checks the Modbus TCP simulator the same way.
func TestMbpollReadsTheTCPSimulator(t *testing.T) {
	srv := sim.NewServer(nil)
	srv.AddUnit(1, &sim.AirSensor{Env: &sim.Environment{Seed: 9}})
	rec := &recorder{}
	srv.OnRead = rec.add
	addr := sim.Listen(t, srv)
	host, port, _ := strings.Cut(addr, ":")
	got := values(t, mbpoll(t, "-m", "tcp", "-p", port, "-a", "1", "-r", "1", "-c", "2", "-t", "4", host))
	check(t, got, rec.last())
	out, err := runMbpoll(t, "-m", "tcp", "-p", port, "-a", "1", "-r", "100", "-c", "1", "-t", "4", host)
	if err == nil || !strings.Contains(out, "Illegal data address") {
		t.Fatalf("an unmapped register did not give exception 2 (%v):\n%s", err, out)
	}
}
