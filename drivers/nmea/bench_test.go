package nmea

import (
	"strings"
	"testing"
)

// buoyBurst is one second of a met-ocean buoy's output: GNSS, weather
// station (MDA and XDR), wind, water temperature, depth and waves.
var buoyBurst = strings.Join([]string{
	"$GPZDA,160012.71,11,03,2004,-1,00*7D",
	"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47",
	"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A",
	"$WIMDA,29.8430,I,1.0106,B,22.0,C,18.5,C,78.3,,18.0,C,260.3,T,249.9,M,1.8,N,0.9,M*3E",
	"$WIMWV,12.1,T,10.1,N,A*27",
	"$WIMWV,350.0,R,16.8,K,A*1F",
	"$WIXDR,H,092,P,RH,C,014.1,C,TEMP,P,1.025,B,PRESS,C,009.9,C,DP*08",
	"$INMTW,17.9,C*1B",
	"$SDDPT,12.5,0.5*64",
	"$PNORW,120720,093150,0,1,0.89,-9.00,1.13,1.49,1.41,1.03,-9.00,190.03,80.67,113.52,0.54,0.00,1024,0,1.19,144.11,0000*71",
}, "\r\n") + "\r\n"

// BenchmarkDecoder decodes a realistic mixed buoy stream fed in 64-byte
// reads, as a serial port delivers it, and reports sentences per second on
// one core and allocations per sentence.
func BenchmarkDecoder(b *testing.B) {
	const bursts = 100
	stream := []byte(strings.Repeat(buoyBurst, bursts))
	sentences := strings.Count(buoyBurst, "\n") * bursts
	d := New(Config{}, "buoy1", gpsClock)
	if out := d.Feed(stream, t0); len(out.Readings) == 0 || len(d.Stats().Errors) != 0 {
		b.Fatalf("burst does not decode cleanly: %v", d.Stats())
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for off := 0; off < len(stream); off += 64 {
			d.Feed(stream[off:min(off+64, len(stream))], t0)
		}
	}
	b.StopTimer()
	n := float64(b.N) * float64(sentences)
	b.ReportMetric(n/b.Elapsed().Seconds(), "sentences/s")
	b.ReportMetric(0, "ns/op")
	allocs := testing.AllocsPerRun(5, func() {
		for off := 0; off < len(stream); off += 64 {
			d.Feed(stream[off:min(off+64, len(stream))], t0)
		}
	})
	b.ReportMetric(allocs/float64(sentences), "allocs/sentence")
}

// BenchmarkFramer measures framing and checksums alone.
func BenchmarkFramer(b *testing.B) {
	stream := []byte(strings.Repeat(buoyBurst, 100))
	f := newFramer(DefaultMaxLine, func(string) {})
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		data := stream
		for len(data) > 0 {
			frame, n := f.next(data)
			data = data[n:]
			if frame != nil {
				if _, kind := checksum(frame, false); kind != "" {
					b.Fatal(kind)
				}
			}
		}
	}
}
