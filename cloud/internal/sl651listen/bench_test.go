package sl651listen

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/protocols/sl651"
)

// BenchmarkTimedReports: stations connected at once each send timed
// reports (water level, rainfall, supply voltage) and wait for each
// confirmation, through the real intake into the embedded store; one op is
// one report stored and confirmed (docs/benchmarks.md).
func BenchmarkTimedReports(b *testing.B) {
	const stations = 50
	var cfgs []config.SL651Station
	addr := func(i int) sl651.Address { return sl651.Address{0, 0, 0, bcd(i / 100), bcd(i % 100)} }
	for i := range stations {
		cfgs = append(cfgs, config.SL651Station{Address: addr(i).String(), Station: "hydro-" + addr(i).String()})
	}
	r := startRig(b, config.SL651{Central: 1, Stations: cfgs})
	base := time.Date(2026, 12, 2, 0, 0, 0, 0, cst)
	// The frames, built before the clock starts.
	frames := make([][][]byte, stations)
	per := b.N/stations + 1
	for i := range stations {
		for k := range per {
			obs := base.Add(time.Duration(k) * time.Minute)
			frames[i] = append(frames[i], encode(b, report(b, sl651.HEX, sl651.FnTimed, 1, addr(i), 0, uint16(k%65535+1),
				obs.Add(5*time.Second), obs, ev{0x39, 10 + float64(k%1000)/1000}, ev{0x26, float64(k) / 10}, ev{0x38, 12.5})))
		}
	}
	conns := make([]net.Conn, stations)
	for i := range conns {
		conns[i] = r.dial(b).c
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range stations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd := sl651.NewReader(conns[i])
			for k := i; k < b.N; k += stations {
				if _, err := conns[i].Write(frames[i][k/stations]); err != nil {
					b.Error(err)
					return
				}
				if _, err := rd.Next(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	// Confirmed means stored: the water levels sent, each once.
	stored := 0
	for i := range stations {
		s, err := r.store.Series(context.Background(), store.SeriesQuery{Gateway: "hydro-" + addr(i).String(),
			Device: addr(i).String(), Metric: "water_level", From: base.Add(-time.Hour), To: base.Add(time.Duration(per+1) * time.Minute)})
		if err != nil {
			b.Fatal(err)
		}
		stored += len(s)
	}
	if stored != b.N {
		b.Fatalf("%d water levels stored, %d reports confirmed", stored, b.N)
	}
}
