package hj212

import (
	"bytes"
	"reflect"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, v := range standardFrames {
		f.Add([]byte(v.frame))
	}
	for _, v := range wildFrames {
		f.Add([]byte(v.frame))
	}
	f.Add([]byte("##0000\r\n"))
	f.Add([]byte("garbage##0101"))
}

// FuzzDecode: Decode never panics; what it accepts encodes back to the same
// bytes when the input was canonical (fields in the standard's order,
// uppercase CRC, no zero-padded numbers), and otherwise to a frame that
// decodes to the same packet.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := Decode(in)
		if err != nil {
			if Kind(err) == "" {
				t.Fatalf("error without kind: %v", err)
			}
			return
		}
		out, err := p.Frame()
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", in, err)
		}
		if bytes.Equal(out, in) {
			return
		}
		q, err := Decode(out)
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("%q re-encoded as %q: %v", in, out, err)
		}
		if again, _ := q.Frame(); !bytes.Equal(again, out) {
			t.Fatalf("encoding not stable: %q, %q", out, again)
		}
	})
}

// FuzzReader: the stream reader never panics, always makes progress, and
// every data segment it returns packs into a frame Unpack accepts.
func FuzzReader(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(&chunked{in, 7})
		for i := 0; ; i++ {
			if i > len(in)+2 {
				t.Fatalf("no progress after %d calls", i)
			}
			data, err := r.Next()
			if err == eof {
				return
			}
			if err != nil {
				if Kind(err) == "" {
					t.Fatalf("error without kind: %v", err)
				}
				continue
			}
			fr, err := Pack(data)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Unpack(fr); err != nil {
				t.Fatalf("returned %q: %v", data, err)
			}
		}
	})
}
