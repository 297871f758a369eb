package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/test/sim"
)

// buoyOptions simulate a moored met-ocean buoy talking NMEA 0183.
type buoyOptions struct {
	link     string
	baud     int
	lat, lon float64
	// swing, if not zero, is the period over which the buoy drags 250 m
	// east of its mooring and comes back (a storm, a slipping anchor).
	swing  time.Duration
	faults float64 // chance per sentence of garbage, noise or a bad checksum
	seed   int64
}

// serveBuoy runs the buoy until ctx is done.
func serveBuoy(ctx context.Context, o buoyOptions, log *slog.Logger) (stop func(), err error) {
	start := time.Now()
	b := &sim.BuoyStream{Env: sim.Environment{Seed: o.seed}, Lat: o.lat, Lon: o.lon, Met: "XDR", Waves: true,
		Seed: uint64(o.seed), Faults: sim.BuoyFaults{Garbage: o.faults / 3, Binary: o.faults / 6,
			BadChecksum: o.faults / 3, Overlong: o.faults / 6}}
	if o.swing > 0 {
		b.Drift = func(at time.Time) (float64, float64) {
			phase := 2 * math.Pi * at.Sub(start).Seconds() / o.swing.Seconds()
			return 0, 250 * (1 - math.Cos(phase)) / 2
		}
	}
	// A burst with waves is about 550 bytes: 0.6 s at 9600 baud, 1.2 s at
	// 4800, so slower lines send every 2 s.
	period := time.Second
	if sim.LineTime(600, o.baud) > 900*time.Millisecond {
		period = 2 * time.Second
	}
	var mu sync.Mutex
	gen := func(now time.Time) []byte { mu.Lock(); defer mu.Unlock(); return b.Next(now) }
	p := sim.NewStreamPort(o.link, serialport.Mode{Baud: o.baud}, period, gen, nil)
	if err := p.Plug(ctx); err != nil {
		return nil, fmt.Errorf("buoy: %w", err)
	}
	log.Info("simulated NMEA buoy", "port", o.link, "baud", o.baud, "every", period, "mooring", fmt.Sprintf("%.4f,%.4f", o.lat, o.lon),
		"swing", o.swing)
	return func() { p.Unplug(nil) }, nil
}

// readerOptions simulate an RFID reader with tags passing.
type readerOptions struct {
	link string
	kind string // fdxb (Allflex text), em4100 (RDM6300), id12la
	baud int
	seed int64
}

// serveReader runs the reader until stop is called.
func serveReader(ctx context.Context, o readerOptions, log *slog.Logger) (stop func(), err error) {
	var (
		r    *sim.TagReader
		tags []string
	)
	switch o.kind {
	case "fdxb":
		r = sim.NewFDXBReader(uint64(o.seed), sim.FDXBAllflex, false)
		for i := range 12 { // a small herd, ISO 11784 country code 156 (China)
			tags = append(tags, fmt.Sprintf("156%012d", 100200300+i*7919))
		}
	case "em4100", "id12la":
		r = sim.NewEM4100Reader(uint64(o.seed))
		if o.kind == "id12la" {
			r = sim.NewID12LAReader(uint64(o.seed))
		}
		for i := range 6 { // staff badges
			tags = append(tags, fmt.Sprintf("%02X%08X", 0x14+i, 0x008EC793+i*0x1111))
		}
	default:
		return nil, fmt.Errorf("-rfid-kind %q is not fdxb, em4100 or id12la", o.kind)
	}
	r.Faults = sim.RFIDFaults{Corrupt: 0.02, Garbage: 0.01}
	v := &sim.Visits{Tags: tags, Stay: 4 * time.Second, Gap: 10 * time.Second, Seed: uint64(o.seed)}
	var mu sync.Mutex
	gen := func(now time.Time) []byte { mu.Lock(); defer mu.Unlock(); return v.Step(r, now) }
	p := sim.NewStreamPort(o.link, serialport.Mode{Baud: o.baud}, 50*time.Millisecond, gen, nil)
	if err := p.Plug(ctx); err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	log.Info("simulated RFID reader", "port", o.link, "kind", o.kind, "baud", o.baud, "tags", len(tags))
	return func() { p.Unplug(nil) }, nil
}
