// Command fieldwatch-sim simulates field sensors, for the demo and for
// trying a gateway without hardware: units behind a Modbus TCP endpoint (a
// serial device server) and, with -rtu-link, units on a simulated RS485 line
// (a pseudo-terminal that the gateway opens like /dev/ttyUSB0), answering at
// realistic wire speed; with -nmea-link, a moored buoy talking NMEA 0183;
// with -rfid-link, an RFID reader with tags passing by.
//
//	fieldwatch-sim -listen 127.0.0.1:5020 -unit 1=soil -unit 10=air
//	fieldwatch-sim -rtu-link /tmp/rs485 -rtu-baud 4800 -rtu-unit 1=dfrobot/sen0657 -rtu-unit 2=generic/sn-3002-7in1
//	fieldwatch-sim -nmea-link /tmp/buoy -nmea-swing 10m -rfid-link /tmp/race -rfid-kind fdxb
//
// A unit's kind is soil or air (Renke sensors with a modelled farm behind
// them) or any firmware profile model (values wander inside its ranges).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
	"github.com/fieldwatch/fieldwatch/test/sim"
)

type unitFlags map[uint8]string

func (u unitFlags) String() string { return fmt.Sprint(map[uint8]string(u)) }

func (u unitFlags) Set(s string) error {
	addr, kind, ok := strings.Cut(s, "=")
	n, err := strconv.Atoi(addr)
	if !ok || err != nil || n < 1 || n > 247 || kind == "" {
		return fmt.Errorf("%q is not ADDRESS=KIND with an address 1..247", s)
	}
	u[uint8(n)] = kind
	return nil
}

func main() {
	tcpUnits, rtuUnits := unitFlags{}, unitFlags{}
	listen := flag.String("listen", "127.0.0.1:5020", "Modbus TCP address to serve the -unit devices on")
	seed := flag.Int64("seed", 1, "seed of the simulated weather")
	flag.Var(tcpUnits, "unit", "a Modbus TCP unit ADDRESS=KIND (soil, air or a profile model); repeat for more")
	link := flag.String("rtu-link", "", "serve an RS485 line on a pseudo-terminal, linked from this path")
	baud := flag.Int("rtu-baud", 9600, "the RS485 line's baud rate")
	flag.Var(rtuUnits, "rtu-unit", "a unit on the RS485 line ADDRESS=KIND; repeat for more")
	buoy := buoyOptions{lat: 35.95, lon: 120.45}
	flag.StringVar(&buoy.link, "nmea-link", "", "serve an NMEA 0183 buoy on a pseudo-terminal, linked from this path")
	flag.IntVar(&buoy.baud, "nmea-baud", 4800, "the buoy's baud rate")
	flag.Float64Var(&buoy.lat, "nmea-lat", buoy.lat, "the buoy's mooring latitude")
	flag.Float64Var(&buoy.lon, "nmea-lon", buoy.lon, "the buoy's mooring longitude")
	flag.DurationVar(&buoy.swing, "nmea-swing", 0, "drag the buoy 250 m off its mooring and back over this period (0: stays)")
	flag.Float64Var(&buoy.faults, "nmea-faults", 0.01, "chance per sentence of garbage, noise or a bad checksum")
	reader := readerOptions{}
	flag.StringVar(&reader.link, "rfid-link", "", "serve an RFID reader on a pseudo-terminal, linked from this path")
	flag.StringVar(&reader.kind, "rfid-kind", "fdxb", "fdxb (Allflex animal tags), em4100 (RDM6300) or id12la")
	flag.IntVar(&reader.baud, "rfid-baud", 9600, "the reader's baud rate")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if len(tcpUnits) == 0 && len(rtuUnits) == 0 && buoy.link == "" && reader.link == "" {
		tcpUnits = unitFlags{1: "soil", 2: "soil", 3: "soil", 10: "air"}
	}
	buoy.seed, reader.seed = *seed, *seed
	if err := run(*listen, *seed, tcpUnits, *link, *baud, rtuUnits, buoy, reader, log); err != nil {
		log.Error("simulator stopped", "err", err)
		os.Exit(1)
	}
}

func run(listen string, seed int64, tcpUnits unitFlags, link string, baud int, rtuUnits unitFlags,
	buoy buoyOptions, reader readerOptions, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if buoy.link != "" {
		unplug, err := serveBuoy(ctx, buoy, log)
		if err != nil {
			return err
		}
		defer unplug()
	}
	if reader.link != "" {
		unplug, err := serveReader(ctx, reader, log)
		if err != nil {
			return err
		}
		defer unplug()
	}
	env := &sim.Environment{Seed: seed}
	set, err := profiles.Builtin()
	if err != nil {
		return err
	}
	probe := 0
	add := func(bus *sim.Bus, units unitFlags, baud int, where string) error {
		addrs := make([]int, 0, len(units))
		for a := range units {
			addrs = append(addrs, int(a))
		}
		sort.Ints(addrs)
		for _, a := range addrs {
			kind := units[uint8(a)]
			var d sim.Device
			if p, ok := set.Get(kind); ok && p.Modbus != nil {
				d = &sim.ProfileDevice{Profile: p, Seed: seed + int64(a), Env: env, Probe: probe}
			} else if d, err = sim.NewDevice(kind, env, probe); err != nil {
				return fmt.Errorf("unit %d: %w, nor a profile (%s)", a, err, strings.Join(set.ModbusModels(), ", "))
			}
			probe++
			bus.AddUnit(uint8(a), d, baud)
			log.Info("simulated unit", "on", where, "unit", a, "kind", kind)
		}
		return nil
	}
	if len(rtuUnits) > 0 {
		if link == "" {
			return fmt.Errorf("-rtu-unit needs -rtu-link")
		}
		bus := sim.NewBus()
		if err := add(bus, rtuUnits, baud, "rs485"); err != nil {
			return err
		}
		srv, err := sim.ServeRTU(ctx, bus, serialport.Mode{Baud: baud})
		if err != nil {
			return err
		}
		defer srv.Wait()
		_ = os.Remove(link)
		if err := os.Symlink(srv.Path, link); err != nil {
			return fmt.Errorf("cannot link %s to the simulated line: %w", link, err)
		}
		defer os.Remove(link)
		log.Info("serving an RS485 line", "port", link, "pty", srv.Path, "baud", baud)
	}
	if len(tcpUnits) == 0 {
		<-ctx.Done()
		return nil
	}
	srv := sim.NewServer(log)
	if err := add(srv.Bus, tcpUnits, 0, "tcp"); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	log.Info("serving Modbus TCP", "addr", ln.Addr().String())
	return srv.Serve(ctx, ln)
}
