package buffer

import (
	"fmt"
	"testing"
)

// BenchmarkAppend appends one poll's readings per call (3, as a soil probe
// gives) with each fsync policy. With "always" every call reaches the disk
// before it returns, so this is the rate a gateway can acquire at.
func BenchmarkAppend(b *testing.B) {
	for _, fsync := range []string{FsyncOff, FsyncAlways} {
		for _, per := range []int{3, 50} {
			b.Run(fmt.Sprintf("fsync=%s/per_append=%d", fsync, per), func(b *testing.B) {
				buf, err := Open(Options{Dir: b.TempDir(), Fsync: fsync, MaxBytes: 1 << 40})
				if err != nil {
					b.Fatal(err)
				}
				defer buf.Close()
				rs := readings(0, per)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := buf.Append(rs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(per)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
				b.ReportMetric(float64(buf.Stats().Bytes)/float64(per*b.N), "disk_bytes/reading")
			})
		}
	}
}

// BenchmarkAppendConcurrent has 8 goroutines (buses and stream devices)
// append one poll each per call with fsync: always: group commit lets
// them share syncs. It reports appends per sync.
func BenchmarkAppendConcurrent(b *testing.B) {
	buf, err := Open(Options{Dir: b.TempDir(), Fsync: FsyncAlways, MaxBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	defer buf.Close()
	rs := readings(0, 3)
	b.SetParallelism(4) // 4 × GOMAXPROCS(2) goroutines
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := buf.Append(rs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	s := buf.Stats()
	b.ReportMetric(float64(3*b.N)/b.Elapsed().Seconds(), "readings/s")
	b.ReportMetric(float64(b.N)/float64(max(s.Syncs, 1)), "appends/sync")
}

// BenchmarkRead drains a 100,000-reading backlog in uplink-sized reads.
func BenchmarkRead(b *testing.B) {
	buf, err := Open(Options{Dir: b.TempDir(), Fsync: FsyncOff, MaxBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	defer buf.Close()
	for i := 0; i < 100_000; i += 10 {
		if _, err := buf.Append(readings(i, 10)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for from := uint64(1); ; {
			c, err := buf.Read(from, 500)
			if err != nil {
				b.Fatal(err)
			}
			if c.Len() == 0 {
				break
			}
			n += c.Len()
			from = c.First + uint64(c.Len())
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
}
