package cli

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/gateway/internal/portlock"
)

// target is how a technician names a bus on the command line: a configured
// bus, a serial port, a Modbus TCP server, or a serial device server.
type target struct {
	config, bus         string
	port, tcp, rtuOver  string
	baud, stopBits      int
	parity, profilesDir string
	timeout             time.Duration
	turnaround          time.Duration
	cfg                 *config.Config
	set                 *profiles.Set
}

func (t *target) flags(fs *flag.FlagSet) {
	// A back-quoted word in a usage string is the flag's argument name in
	// -h (flag.UnquoteUsage): quote the placeholder, never a command.
	fs.StringVar(&t.config, "c", "", "gateway config `FILE`, to use one of its buses (with -bus)")
	fs.StringVar(&t.bus, "bus", "", "a bus of the config, by `NAME`")
	fs.StringVar(&t.port, "port", "", "serial port `DEV` for Modbus RTU, e.g. /dev/ttyUSB0 (fieldwatch-gateway ports lists them)")
	fs.StringVar(&t.tcp, "tcp", "", "Modbus TCP server `HOST:PORT`")
	fs.StringVar(&t.rtuOver, "rtu-over-tcp", "", "serial device server (DTU) `HOST:PORT` carrying RTU frames")
	fs.IntVar(&t.baud, "baud", 0, "line speed in `BAUD` (default: the profile's)")
	fs.StringVar(&t.parity, "parity", "none", "`PARITY`: none, even or odd")
	fs.IntVar(&t.stopBits, "stop-bits", 1, "stop `BITS`: 1 or 2")
	fs.DurationVar(&t.timeout, "timeout", 0, "reply timeout, a `DURATION` (default 300ms, 1s over TCP)")
	fs.DurationVar(&t.turnaround, "turnaround", 0, "extra silence between frames for slow units, a `DURATION`")
	fs.StringVar(&t.profilesDir, "profiles", "", "extra profiles `DIR`")
}

// resolve checks the flags and loads what they name.
func (t *target) resolve() error {
	n := 0
	for _, s := range []string{t.bus, t.port, t.tcp, t.rtuOver} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("name exactly one bus: -c FILE -bus NAME, -port DEV, -tcp HOST:PORT or -rtu-over-tcp HOST:PORT")
	}
	if t.bus != "" {
		path := t.config
		if path == "" {
			path = defaultConfig()
		}
		cfg, err := config.LoadFile(path)
		if err != nil {
			return err
		}
		t.cfg, t.set = cfg, cfg.Profiles
		if _, err := t.configBus(); err != nil {
			return err
		}
		return nil
	}
	set, err := profiles.WithDir(t.profilesDir)
	if err != nil {
		return err
	}
	t.set = set
	return nil
}

// free refuses a serial port the running gateway owns, with an
// *portlock.InUseError. TCP targets are never refused: a Modbus TCP server
// or a serial device server takes many clients.
func (t *target) free() error {
	port := t.port
	if t.bus != "" {
		if b, err := t.configBus(); err == nil && b.Type == "rtu" {
			port = b.Port
		}
	}
	if port == "" {
		return nil
	}
	return portlock.Check(portlock.Dir(), port)
}

func (t *target) configBus() (*config.Bus, error) {
	for i := range t.cfg.Buses {
		if t.cfg.Buses[i].Name == t.bus {
			return &t.cfg.Buses[i], nil
		}
	}
	var names []string
	for _, b := range t.cfg.Buses {
		names = append(names, b.Name)
	}
	return nil, fmt.Errorf("no bus %q in %s (buses: %s)", t.bus, t.cfg.File, strings.Join(names, ", "))
}

// serial reports whether the target is an RTU line whose baud can change.
func (t *target) serial() bool {
	if t.bus != "" {
		b, _ := t.configBus()
		return b.Type != "tcp"
	}
	return t.tcp == ""
}

// describe names the target for messages.
func (t *target) describe(baud int) string {
	switch {
	case t.bus != "":
		b, _ := t.configBus()
		return fmt.Sprintf("bus %s (%s)", b.Name, b.Type)
	case t.port != "":
		return fmt.Sprintf("%s at %s", t.port, t.mode(baud))
	case t.tcp != "":
		return "Modbus TCP " + t.tcp
	}
	return fmt.Sprintf("DTU %s at %s", t.rtuOver, t.mode(baud))
}

func (t *target) mode(baud int) serialport.Mode {
	return serialport.Mode{Baud: baud, Parity: t.parity, StopBits: t.stopBits}
}

// client opens the target at baud (0: the target's own or 9600).
func (t *target) client(baud int) (modbus.Client, error) {
	if t.bus != "" {
		b, _ := t.configBus()
		bc := *b
		if baud != 0 && bc.Type != "tcp" {
			bc.Baud = baud
		}
		if t.timeout != 0 {
			bc.Timeout = t.timeout
		}
		return bc.NewClient(), nil
	}
	if baud == 0 {
		baud = 9600
	}
	timeout := t.timeout
	if timeout == 0 {
		timeout = 300 * time.Millisecond
		if t.tcp != "" {
			timeout = time.Second
		}
	}
	m := t.mode(baud)
	if t.tcp == "" {
		if err := m.Check(); err != nil {
			return nil, err
		}
	}
	o := modbus.RTUOptions{Mode: m, Timeout: timeout, Turnaround: t.turnaround}
	switch {
	case t.port != "":
		return modbus.NewRTU(t.port, o), nil
	case t.tcp != "":
		return modbus.NewTCP(t.tcp, timeout), nil
	}
	return modbus.NewRTUOverTCP(t.rtuOver, o), nil
}

// profile looks a model up.
func (t *target) profile(model string) (*profiles.Profile, error) {
	p, ok := t.set.Get(model)
	if !ok {
		return nil, fmt.Errorf("no profile %q; known: %s", model, strings.Join(t.set.Models(), ", "))
	}
	if p.Modbus == nil {
		return nil, fmt.Errorf("%s is not a Modbus profile", model)
	}
	return p, nil
}

// parseUnits reads "1-16,45,100" into a list of unit addresses.
func parseUnits(s string) ([]uint8, error) {
	var out []uint8
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 1 || b > 247 || b < a {
			return nil, fmt.Errorf("%q is not a unit or range within 1..247", part)
		}
		for u := a; u <= b; u++ {
			if !seen[u] {
				seen[u] = true
				out = append(out, uint8(u))
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no units to try")
	}
	return out, nil
}

// parseBauds reads "4800,9600".
func parseBauds(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		b, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || (serialport.Mode{Baud: b}).Check() != nil {
			return nil, fmt.Errorf("%q is not a baud rate", part)
		}
		out = append(out, b)
	}
	return out, nil
}
