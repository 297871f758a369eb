package nmea

import (
	"maps"
	"reflect"
	"strings"
	"testing"
)

const (
	mtw = "$INMTW,17.9,C*1B"
	mwv = "$WIMWV,12.1,T,10.1,N,A*27"
	xdr = "$WIXDR,H,092,P,RH,C,014.1,C,TEMP,P,1.025,B,PRESS,C,009.9,C,DP*08"
)

// TestFraming feeds whole inputs and checks the accepted frames, the
// refusals by kind and the number of readings.
func TestFraming(t *testing.T) {
	long := "$WIXDR" + strings.Repeat(",C,1.0,C,X", 60) // > 512 bytes
	long = withChecksum(long)
	l100 := withChecksum("$WIXDR,C,014.1,C,TEMP" + strings.Repeat(",H,1,P,X", 10)) // 100+ bytes, under 512
	tests := []struct {
		name     string
		cfg      func(*Config)
		in       string
		frames   uint64
		errs     map[string]uint64
		readings int
	}{
		{name: "CRLF", in: mtw + "\r\n" + mwv + "\r\n", frames: 2, readings: 3},
		{name: "LF only", in: mtw + "\n" + mwv + "\n", frames: 2, readings: 3},
		{name: "CR only", in: mtw + "\r" + mwv + "\r", frames: 2, readings: 3},
		{name: "no line end yet", in: mtw + "\r\n" + mwv, frames: 1, readings: 1},
		{name: "blank lines and spaces", in: "\r\n  \r\n" + mtw + "  \r\n\r\n", frames: 1, readings: 1},
		{name: "lowercase checksum", in: strings.ToLower(mtw[:1]) + mtw[1:len(mtw)-2] + "1b\r\n", frames: 1, readings: 1},
		{name: "bad checksum", in: "$INMTW,17.9,C*1C\r\n" + mwv + "\r\n", frames: 1, errs: map[string]uint64{KindChecksum: 1}, readings: 2},
		{name: "checksum one digit", in: "$INMTW,17.9,C*1\r\n", errs: map[string]uint64{KindChecksum: 1}},
		{name: "checksum not hex", in: "$INMTW,17.9,C*1G\r\n", errs: map[string]uint64{KindChecksum: 1}},
		{name: "flipped bit in a field", in: "$INMTW,17.8,C*1B\r\n", errs: map[string]uint64{KindChecksum: 1}},
		{name: "no checksum refused", in: "$INMTW,17.9,C\r\n", errs: map[string]uint64{KindNoChecksum: 1}},
		{name: "no checksum allowed", cfg: func(c *Config) { c.AllowNoChecksum = true }, in: "$INMTW,17.9,C\r\n", frames: 1, readings: 1},
		{name: "garbage between frames", in: mtw + "\r\nxyz?!" + mwv + "\r\n", frames: 2, errs: map[string]uint64{KindGarbage: 1, KindTruncated: 1}, readings: 3},
		{name: "garbage run counted once", in: "hello world\r\n" + mtw + "\r\nnoise" + mwv + "\r\n", frames: 2, errs: map[string]uint64{KindGarbage: 2}, readings: 3},
		{name: "gpsd comment lines", in: "# Name: x\r\n#\r\n" + mtw + "\r\n", frames: 1, errs: map[string]uint64{KindGarbage: 2}, readings: 1},
		{name: "binary noise between frames", in: mtw + "\r\n\x00\xff\x13\x8a" + mwv + "\r\n", frames: 2, errs: map[string]uint64{KindBinary: 1}, readings: 3},
		{name: "binary inside a frame", in: "$INMTW,1\x007.9,C*1B\r\n" + mwv + "\r\n", frames: 1, errs: map[string]uint64{KindBinary: 1}, readings: 2},
		{name: "frame cut by the next start", in: "$INMTW,17" + mwv + "\r\n", frames: 1, errs: map[string]uint64{KindTruncated: 1}, readings: 2},
		{name: "longer than 82 accepted", in: l100 + "\r\n", frames: 1, readings: 1},
		{name: "overlong refused, next frame fine", in: long + "\r\n" + mtw + "\r\n", frames: 1, errs: map[string]uint64{KindOverlong: 1}, readings: 1},
		{name: "overlong without line end resyncs on $", in: long + mtw + "\r\n", frames: 1, errs: map[string]uint64{KindOverlong: 1}, readings: 1},
		{name: "max_line 82 refuses 100", cfg: func(c *Config) { c.MaxLine = 82 }, in: l100 + "\r\n", errs: map[string]uint64{KindOverlong: 1}},
		{name: "several frames one call", in: strings.Repeat(mtw+"\r\n"+mwv+"\r\n"+xdr+"\r\n", 3), frames: 9, readings: 21},
		{name: "embedded $ (Navico VLW, recorded)", in: "$SDVLW,$SDVLW,,N,322.0,N,2315.4,N*59\r\n", errs: map[string]uint64{KindTruncated: 1, KindChecksum: 1}},
		{name: "empty frame", in: "$\r\n$*00\r\n", errs: map[string]uint64{KindNoChecksum: 1, KindUnknownSentence: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			d := New(cfg, "b", nil)
			out := feedAll(t, d, tt.in)
			st := d.Stats()
			if tt.errs == nil {
				tt.errs = map[string]uint64{}
			}
			if st.Frames != tt.frames || !maps.Equal(errorsOf(st), tt.errs) || len(out.Readings) != tt.readings {
				t.Fatalf("frames %d errors %v readings %d, want %d %v %d", st.Frames, st.Errors, len(out.Readings), tt.frames, tt.errs, tt.readings)
			}
		})
	}
}

// TestSplitEverywhere feeds a stream in two calls split at every byte and
// checks that the output and the counters do not depend on the split.
func TestSplitEverywhere(t *testing.T) {
	in := "junk" + mtw + "\r\n" + mwv + "\n$INMTW,17.9,C*1C\r\n\x01\x02" + xdr + "\r\n$GPZDA,160012.71,11,03,2004,-1,00*7D\r\n" +
		"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r"
	ref := New(Config{}, "b", nil)
	want := ref.Feed([]byte(in), t0)
	wantStats := ref.Stats()
	for i := 0; i <= len(in); i++ {
		d := New(Config{}, "b", nil)
		got := d.Feed([]byte(in[:i]), t0)
		got.Add(d.Feed([]byte(in[i:]), t0))
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(d.Stats(), wantStats) {
			t.Fatalf("split at %d: %d readings, stats %+v; want %d, %+v", i, len(got.Readings), d.Stats(), len(want.Readings), wantStats)
		}
	}
	// And byte by byte.
	d := New(Config{}, "b", nil)
	var got = d.Feed(nil, t0)
	for i := range len(in) {
		got.Add(d.Feed([]byte{in[i]}, t0))
	}
	if !reflect.DeepEqual(got.Readings, want.Readings) || !reflect.DeepEqual(d.Stats(), wantStats) {
		t.Fatalf("byte by byte: %+v, want %+v", d.Stats(), wantStats)
	}
}

// TestStartMidFrame reopens the port in the middle of a frame: the cut
// frame is counted and dropped, the next one decodes.
func TestStartMidFrame(t *testing.T) {
	d := New(Config{}, "b", nil)
	out := d.Feed([]byte(mtw+"\r\n"+mwv[:10]), t0)
	if len(out.Readings) != 1 {
		t.Fatalf("%d readings before the reopening", len(out.Readings))
	}
	d.Start(t0)
	out = d.Feed([]byte(mwv[10:]+"\r\n"+mtw+"\r\n"), t0)
	st := d.Stats()
	if len(out.Readings) != 1 || st.Frames != 2 || st.Errors[KindCut] != 1 || st.Errors[KindGarbage] != 1 {
		t.Fatalf("%d readings, stats %+v; want 1 reading, 2 frames, 1 cut, 1 garbage (the rest of the cut frame)", len(out.Readings), st)
	}
	// Start between frames cuts nothing.
	d.Start(t0)
	if d.Stats().Errors[KindCut] != 1 {
		t.Fatalf("Start between frames counted a cut")
	}
}

// TestStatsIsACopy checks that the caller cannot change the counters.
func TestStatsIsACopy(t *testing.T) {
	d := New(Config{}, "b", nil)
	d.Feed([]byte("$INMTW,17.9,C*00\r\n"), t0)
	d.Stats().Errors[KindChecksum] = 99
	if d.Stats().Errors[KindChecksum] != 1 {
		t.Fatal("Stats shares its map")
	}
}
