package nmea

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecoder feeds arbitrary bytes, split into several Feed calls at
// offsets taken from the input, with a Start in between, and checks that
// the decoder never panics and that every reading and event is valid.
func FuzzDecoder(f *testing.F) {
	seeds := []string{
		mtw + "\r\n" + mwv + "\r\n" + xdr + "\r\n",
		"$GPGGA,123519,4807.038,N,01131.000,E,6,08,0.9,545.4,M,46.9,M,,*40\r\n$GPRMC,,V,,,,,,,,,,N*53\r\n",
		"$PNORW,120720,093150,0,1,0.89,-9.00,1.13,1.49,1.41,1.03,-9.00,190.03,80.67,113.52,0.54,0.00,1024,0,1.19,144.11,0000*71\r\n",
		"$GPZDA,160012.71,11,03,2004,-1,00*7D\n$IIMWD,297.9,T,309.0,M,3.2,M*2A\n$WIMWV,322.0,G,09.22,N,A*3C\n",
		"$IIXDR, C, 12.5, C, AIRTEMP, P, 1.0132, B, BARO*13\r\n$IIMWH,6.6,f,2.0,M*7B\r\n\x00\xff$SDDPT,0.5,0.5,*7B\r",
	}
	files, _ := filepath.Glob("testdata/*.nmea")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
			seeds = append(seeds, string(b[:min(len(b), 2000)]))
		}
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint16(i*7), uint16(i*13+1))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint16) {
		cfg := Config{AllowNoChecksum: cut1%2 == 1, MaxLine: 82 + int(cut2)%600}
		d := New(cfg, "fuzz", gpsClock).WithMooring(Mooring{Lat: 48.1, Lon: 11.5, RadiusM: 100})
		a := int(cut1) % (len(data) + 1)
		b := a + int(cut2)%(len(data)-a+1)
		for _, part := range [][]byte{data[:a], data[a:b], data[b:]} {
			checkOutput(t, d.Feed(part, t0))
		}
		d.Start(t0)
		checkOutput(t, d.Feed(data, t0))
		checkOutput(t, d.Tick(t0))
		st := d.Stats()
		if st.Frames > 0 && st.LastFrame.IsZero() {
			t.Fatal("frames accepted without LastFrame")
		}
	})
}
