package ndbc

import (
	"os"
	"testing"
	"time"
)

// FuzzDecoder feeds arbitrary documents, split into several Feed calls, with
// a Start in between, and checks that the decoder never panics and that
// every reading is valid and newer than the watermark.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte(header+sampleRow), uint16(3), uint16(50))
	f.Add([]byte(header+sampleRow+header+sampleRow), uint16(100), uint16(7))
	f.Add([]byte("#YY  MM DD hh mm WDIR VIS  TIDE\n#yr  mo dy hr mn degT mi ft\n14 09 11 16 40 110 1.5 -1.0\n"), uint16(0), uint16(0))
	if doc, err := os.ReadFile("testdata/41010.txt"); err == nil {
		f.Add(doc, uint16(500), uint16(1000))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint16) {
		d := New(Config{Backfill: time.Duration(cut2%3) * 24 * time.Hour}, "fuzz")
		a := int(cut1) % (len(data) + 1)
		b := a + int(cut2)%(len(data)-a+1)
		seen := map[time.Time]bool{}
		check := func(feedNow time.Time, parts ...[]byte) {
			for _, p := range parts {
				out := d.Feed(p, feedNow)
				checkOutput(t, out)
				for _, r := range out.Readings {
					if r.Time.After(feedNow.Add(maxAhead)) {
						t.Fatalf("reading from the future: %+v", r)
					}
					seen[r.Time] = true
				}
			}
		}
		check(now, data[:a], data[a:b], data[b:])
		d.Start(now)
		out := d.Feed(data, now)
		checkOutput(t, out)
		for _, r := range out.Readings {
			if _, old := seen[r.Time]; old {
				t.Fatalf("row %v emitted again after Start", r.Time)
			}
		}
	})
}
