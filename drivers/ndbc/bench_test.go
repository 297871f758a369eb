package ndbc

import (
	"os"
	"strings"
	"testing"
)

// BenchmarkRows decodes a 45-day realtime2 file (6480 rows, the size a
// 10-minute station publishes) in 32 KiB reads and reports rows per second.
func BenchmarkRows(b *testing.B) {
	doc, err := os.ReadFile("testdata/41010.txt")
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.SplitAfter(string(doc), "\n")
	hdr, rows := strings.Join(lines[:2], ""), lines[2:len(lines)-1]
	var sb strings.Builder
	sb.WriteString(hdr)
	for i := 0; i < 6480; i++ {
		sb.WriteString(rows[i%len(rows)])
	}
	full := []byte(sb.String())
	b.SetBytes(int64(len(full)))
	b.ReportAllocs()
	for b.Loop() {
		d := New(Config{}, "b") // a fresh decoder: every row is new
		for off := 0; off < len(full); off += 32 << 10 {
			d.Feed(full[off:min(off+32<<10, len(full))], now)
		}
		if d.Stats().Frames != 6480 {
			b.Fatalf("%d rows", d.Stats().Frames)
		}
	}
	b.ReportMetric(float64(b.N)*6480/b.Elapsed().Seconds(), "rows/s")
}
