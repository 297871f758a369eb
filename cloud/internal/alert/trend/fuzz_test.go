package trend

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// FuzzWindow feeds arbitrary readings, 10 bytes each: a signed step in
// seconds from the previous reading (out of order, gaps, jumps) and a
// value's bits (NaN, infinities, huge values). The first two bytes choose
// the span and the bucket count. Nothing may panic, buckets stay ordered
// and bounded, and a fit never has a NaN or infinite slope.
func FuzzWindow(f *testing.F) {
	seed := []byte{6, 36}
	for i := 0; i < 60; i++ {
		seed = binary.LittleEndian.AppendUint16(seed, 120)
		seed = binary.LittleEndian.AppendUint64(seed, math.Float64bits(40-float64(i)/20))
	}
	f.Add(seed)
	f.Add([]byte{1, 2, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		span := time.Duration(1+data[0]%24) * time.Hour
		w, err := NewWindow(span, 2+int(data[1])%63)
		if err != nil {
			t.Fatal(err)
		}
		data = data[2:]
		var fr Fitter
		at := t0
		for len(data) >= 10 {
			step := int16(binary.LittleEndian.Uint16(data))
			v := math.Float64frombits(binary.LittleEndian.Uint64(data[2:]))
			data = data[10:]
			at = at.Add(time.Duration(step) * time.Second)
			w.Add(at, v)
			if len(w.Buckets) > w.Max {
				t.Fatalf("%d buckets, more than %d", len(w.Buckets), w.Max)
			}
			for i, b := range w.Buckets {
				if b.N < 1 || math.IsInf(b.Sum, 0) || math.IsNaN(b.Sum) ||
					(i > 0 && b.I <= w.Buckets[i-1].I) || b.I <= w.Buckets[len(w.Buckets)-1].I-int64(w.Max) {
					t.Fatalf("bad bucket %d: %+v in %+v", i, b, w.Buckets)
				}
			}
			fit, ok := fr.Fit(w, 3)
			if !finite(fit.Slope) || !finite(fit.Intercept) || math.IsNaN(fit.P) || math.IsNaN(fit.Z) {
				t.Fatalf("not finite: %+v", fit)
			}
			if ok {
				for _, op := range []string{"<", "<=", ">", ">="} {
					if d, ok := fit.Crossing(op, 0, at); ok && d < 0 {
						t.Fatalf("negative crossing %v", d)
					}
				}
			}
		}
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		var back Window
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
	})
}
