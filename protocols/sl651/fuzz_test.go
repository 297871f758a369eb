package sl651

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, v := range hexFrames {
		b, _ := hex.DecodeString(v.hex)
		f.Add(b)
	}
	for _, enc := range []Encoding{HEX, ASCII} {
		body := []byte("0007261202183016ST 0012345678 P TT 2612021800 DRN05 PJ Z 0.5 1.200 M 1.250 1.0 M ")
		if enc == HEX {
			body, _ = hex.DecodeString("0007261202183016F1F1001234567850F0F0261202180004180000052019000005FFFFFF000010")
		}
		b, _ := Frame{Encoding: enc, Center: 1, Function: FnInterval, Start: STX, Body: body, End: ETX}.Encode()
		f.Add(b)
	}
	a := []byte(asciiTimed)
	c := CRC16(a)
	f.Add(append(a, []byte(hex.EncodeToString([]byte{byte(c >> 8), byte(c)}))...))
}

// FuzzDecode: Decode and ParseReport never panic; an accepted frame encodes
// back to the same bytes when canonical (uppercase hex digits in ASCII),
// else to a frame that decodes to the same; a parsed body writes back the
// same bytes, or a body that parses to the same values.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		fr, err := Decode(in)
		if err != nil {
			if Kind(err) == "" {
				t.Fatalf("error without kind: %v", err)
			}
			return
		}
		out, err := fr.Encode()
		if err != nil {
			t.Fatalf("accepted % X but cannot encode it: %v", in, err)
		}
		if !bytes.Equal(out, in) {
			g, err := Decode(out)
			if err != nil || !reflect.DeepEqual(g, fr) {
				t.Fatalf("% X re-encoded as % X: %v", in, out, err)
			}
		}
		r, err := ParseReport(fr, cst)
		if err != nil {
			if Kind(err) == "" {
				t.Fatalf("error without kind: %v", err)
			}
			return
		}
		body, err := r.Body(fr.Encoding, cst)
		if err != nil {
			t.Fatalf("parsed but cannot write back: %v", err)
		}
		if bytes.Equal(body, fr.Body) {
			return
		}
		g := fr
		g.Body = body
		r2, err := ParseReport(g, cst)
		if err != nil || !reflect.DeepEqual(r2.Values, r.Values) {
			t.Fatalf("body %q written back as %q: %v", fr.Body, body, err)
		}
	})
}

// FuzzReader: the stream reader never panics, makes progress, and returns
// only frames that encode and decode again.
func FuzzReader(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(&chunked{in, 7})
		for i := 0; ; i++ {
			if i > len(in)+2 {
				t.Fatalf("no progress after %d calls", i)
			}
			fr, err := r.Next()
			if err != nil {
				if Kind(err) == "" {
					return // io.EOF
				}
				continue
			}
			out, err := fr.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Decode(out); err != nil {
				t.Fatal(err)
			}
		}
	})
}
