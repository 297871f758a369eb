// Command fieldwatch-sim serves simulated field sensors over Modbus TCP, for
// the demo and for trying a gateway without hardware.
//
//	fieldwatch-sim -listen 127.0.0.1:5020 -unit 1=soil -unit 2=soil -unit 10=air
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/fieldwatch/fieldwatch/test/sim"
)

type unitFlags map[uint8]string

func (u unitFlags) String() string { return fmt.Sprint(map[uint8]string(u)) }

func (u unitFlags) Set(s string) error {
	addr, kind, ok := strings.Cut(s, "=")
	n, err := strconv.Atoi(addr)
	if !ok || err != nil || n < 1 || n > 247 {
		return fmt.Errorf("%q is not ADDRESS=KIND with an address 1..247", s)
	}
	if _, ok := sim.Kinds[kind]; !ok {
		return fmt.Errorf("unknown kind %q (soil, air)", kind)
	}
	u[uint8(n)] = kind
	return nil
}

func main() {
	units := unitFlags{}
	listen := flag.String("listen", "127.0.0.1:5020", "Modbus TCP address to serve")
	seed := flag.Int64("seed", 1, "seed of the simulated weather")
	flag.Var(units, "unit", "a simulated device ADDRESS=KIND (soil or air); repeat for more")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if len(units) == 0 {
		units = unitFlags{1: "soil", 2: "soil", 3: "soil", 10: "air"}
	}
	if err := run(*listen, *seed, units, log); err != nil {
		log.Error("simulator stopped", "err", err)
		os.Exit(1)
	}
}

func run(listen string, seed int64, units unitFlags, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &sim.Environment{Seed: seed}
	srv := sim.NewServer(log)
	probe := 0
	for addr := uint8(1); addr != 0; addr++ {
		kind, ok := units[addr]
		if !ok {
			continue
		}
		d, err := sim.NewDevice(kind, env, probe)
		if err != nil {
			return err
		}
		probe++
		srv.AddUnit(addr, d)
		log.Info("simulated unit", "unit", addr, "kind", kind)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	log.Info("serving Modbus TCP", "addr", ln.Addr().String())
	return srv.Serve(ctx, ln)
}
