package rfid

import (
	"bytes"
	"reflect"
	"testing"
)

// streams are inputs with several frames, repeats, faults and garbage.
func streams() map[Protocol][]byte {
	j := func(parts ...string) []byte { return bytes.Join(toBytes(parts), nil) }
	return map[Protocol][]byte{
		EM4100RDM6300: j("xx", string(em("14008EC793")), string(em("14008EC793")), "\x02123", string(em("0102030405")),
			"\x0214008EC793CF\x03", "\x02000000000000\x03", "\x03"),
		EM4100ID12LA: j("\x020C000621A58E\r\n\x03", "\r\n", "\x020C000621A58E\r\n\x03", "\x020C000621A58F\r\n\x03",
			"\x0214008EC793CE\r\n\x03"),
		FDXBText: j("LA 982 000001088420\r\n", "\x02LA 00000 0 982 000001088420\r\n", "garbage\x01\r\n",
			"LR 0006 0000000018514348\r\n", "3E7.1CBE991A14\r\n", "LA 982 0000\x02999123456789012\n"),
		Wiegand26Text: j("00101101000000001010001000\r\n", "00101101000000001010001001\r\n",
			"01111111111111111111111111\r\n", "0010\x0200101101000000001010001000\r\n"),
	}
}

func toBytes(ss []string) [][]byte {
	var out [][]byte
	for _, s := range ss {
		out = append(out, []byte(s))
	}
	return out
}

// TestSplit feeds each stream whole and split in two at every position:
// the output and the counters must not change.
func TestSplit(t *testing.T) {
	for proto, in := range streams() {
		t.Run(string(proto), func(t *testing.T) {
			whole := newTest(proto)
			want := summaries(whole.Feed(in, t0).Events)
			if len(want) < 2 {
				t.Fatalf("stream too simple: %v", want)
			}
			for i := 0; i <= len(in); i++ {
				d := newTest(proto)
				got := summaries(append(d.Feed(in[:i], t0).Events, d.Feed(in[i:], t0).Events...))
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("split at %d: unexpected events\ngot  %q\nwant %q", i, got, want)
				}
				if !equalStats(d.Stats(), whole.Stats()) {
					t.Fatalf("split at %d: unexpected stats; got %v; want %v", i, d.Stats(), whole.Stats())
				}
			}
			// and byte by byte
			d := newTest(proto)
			var got []string
			for i := range in {
				got = append(got, summaries(d.Feed(in[i:i+1], t0).Events)...)
			}
			if !reflect.DeepEqual(got, want) || !equalStats(d.Stats(), whole.Stats()) {
				t.Fatalf("byte by byte: unexpected output %q, %v", got, d.Stats())
			}
		})
	}
}

// TestStartCutsFrame checks that a frame cut by Start is counted and
// skipped and the next one decoded.
func TestStartCutsFrame(t *testing.T) {
	cases := []struct {
		proto       Protocol
		half, whole string
	}{
		{EM4100RDM6300, "\x0214008E", "\x0214008EC793CE\x03"},
		{EM4100ID12LA, "\x020C000621A58E\r", "\x020C000621A58E\r\n\x03"},
		{FDXBText, "LA 982 0000", "LA 982 000001088420\r\n"},
		{Wiegand26Text, "0010110100", "00101101000000001010001000\r\n"},
	}
	for _, c := range cases {
		t.Run(string(c.proto), func(t *testing.T) {
			d := newTest(c.proto)
			if out := d.Feed([]byte(c.half), t0); !out.Empty() {
				t.Fatalf("unexpected output %+v", out)
			}
			if out := d.Start(t0); !out.Empty() {
				t.Fatalf("unexpected output %+v", out)
			}
			out := d.Feed([]byte(c.whole), t0)
			if len(out.Events) != 1 {
				t.Fatalf("unexpected events %v", summaries(out.Events))
			}
			if st := d.Stats(); st.Frames != 1 || !reflect.DeepEqual(st.Errors, errs(StatCut, 1)) {
				t.Errorf("unexpected stats %+v", st)
			}
			// A Start between frames cuts nothing.
			d.Start(t0)
			if st := d.Stats(); st.Errors[StatCut] != 1 {
				t.Errorf("unexpected stats %+v", st)
			}
		})
	}
}
