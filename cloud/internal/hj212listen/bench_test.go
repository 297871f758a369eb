package hj212listen

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/protocols/hj212"
)

// BenchmarkLoggers connects 5 000 data loggers (500 with -short) over real
// loopback TCP to a listener on a real SQLite store, each authenticated by
// its first real-time frame; then each iteration is one minute of the
// fleet: every logger sends a 2011 frame of five water factors and waits
// for its 9014. It reports the memory the connections hold (both ends are
// in this process, so it is an upper bound for the listener's share), the
// frames and readings stored per second, and the slowest answer.
//
//	go test -run '^$' -bench Loggers -benchtime 3x ./cloud/internal/hj212listen/
func BenchmarkLoggers(b *testing.B) {
	n := 5000
	if testing.Short() {
		n = 500
	}
	loggers := make([]Logger, n)
	for i := range loggers {
		loggers[i] = Logger{MN: fmt.Sprintf("BENCH%05d", i), PW: "123456", Station: fmt.Sprintf("station-%05d", i)}
	}
	r := start(b, Config{Loggers: loggers})
	addr := r.l.Addr().String()
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	minuteFrame := func(i, minute int) (string, string) {
		at := t0.Add(time.Duration(minute) * time.Minute)
		qn := hj212.QN(at, hj212.Beijing)
		return frame(b, loggers[i].MN, "123456", hj212.CNRealtime, qn, hj212.FormatTime(at, hj212.Beijing),
			hj212.FactorItem("w01001", "Rtd", "7.12", "Flag", "N"), hj212.FactorItem("w01009", "Rtd", "6.80", "Flag", "N"),
			hj212.FactorItem("w01010", "Rtd", "18.4", "Flag", "N"), hj212.FactorItem("w01014", "Rtd", "412.0", "Flag", "N"),
			hj212.FactorItem("w21003", "Rtd", "0.42", "Flag", "N")), qn
	}
	exchange := func(p *peer, i, minute int) {
		f, qn := minuteFrame(i, minute)
		p.send(f)
		if _, a := p.next(); a.QN != qn {
			b.Fatalf("logger %d: answer %s to %s", i, a.QN, qn)
		}
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peers := make([]*peer, n)
	began := time.Now()
	// Loggers come in as they would after an outage of the cloud: many at
	// once, 32 at a time, each authenticating with its first frame.
	var wg sync.WaitGroup
	next := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				peers[i] = dial(b, addr)
				exchange(peers[i], i, 0)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	connected := time.Since(began)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perConn := float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse) / float64(n)
	b.ResetTimer()
	var slowest time.Duration
	for m := range b.N {
		var mu sync.Mutex
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := time.Now()
				exchange(peers[i], i, m+1)
				d := time.Since(s)
				mu.Lock()
				slowest = max(slowest, d)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	el := b.Elapsed().Seconds()
	b.StopTimer()
	// Answered is not yet stored: every logger's pH, one a minute, is.
	for i := range n {
		s, err := r.st.Series(context.Background(), store.SeriesQuery{Gateway: loggers[i].Station, Device: loggers[i].MN,
			Metric: "water_ph", From: t0, To: t0.Add(time.Duration(b.N+1) * time.Minute)})
		if err != nil || len(s) != b.N+1 {
			b.Fatalf("logger %d: %d pH values stored, %d sent (%v)", i, len(s), b.N+1, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/el, "frames/s")
	b.ReportMetric(float64(5*n*b.N)/el, "readings/s")
	b.ReportMetric(slowest.Seconds(), "s-slowest-answer")
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(perConn/1024, "KiB/conn")
	b.ReportMetric(connected.Seconds(), "s-connect")
}
