package mqttsrc

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	doc := ` { "a" : { "b" : [ 10 , {"c": "x,]}"}, [1, 2] ], "esc\"k": 1, "d\u0065f": true },
		"e": null, "s": "q\"uote", "dup": 1, "dup": {"z": 2}, "n": -1.5e3 } `
	tests := []struct {
		path, want string
	}{
		{".", strings.TrimSpace(doc)},
		{"a.b.0", "10"},
		{"a.b.1.c", `"x,]}"`},
		{"a.b.2.1", "2"},
		{"a.b.3", ""},
		{"a.b.c", ""},
		{"a.esc\"k", "1"},
		{"a.def", "true"},
		{"e", "null"},
		{"s", `"q\"uote"`},
		{"dup.z", "2"},
		{"n", "-1.5e3"},
		{"n.x", ""},
		{"missing", ""},
		{"s.0", ""},
	}
	for _, tt := range tests {
		p, err := parsePath(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(lookup([]byte(doc), p)); got != tt.want {
			t.Errorf("lookup(%q) = %q; want %q", tt.path, got, tt.want)
		}
	}
}

func TestTopicLevel(t *testing.T) {
	topic := "application/app-1/device/0101/event/up"
	for n, want := range []string{"application", "app-1", "device", "0101", "event", "up"} {
		if got, ok := topicLevel(topic, n); !ok || got != want {
			t.Errorf("topicLevel(%d) = %q, %v; want %q", n, got, ok, want)
		}
	}
	if _, ok := topicLevel(topic, 6); ok {
		t.Error("level 6 of 6 levels found")
	}
	if got, ok := topicLevel("/a", 0); !ok || got != "" {
		t.Errorf("empty first level = %q %v", got, ok)
	}
}

func TestIsNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-0": true, "12": true, "1.5": true, "1e3": true, "1E+3": true, "-2.5e-3": true,
		"": false, "-": false, "01": false, "1.": false, ".5": false, "1e": false, "+1": false,
		"0x10": false, "Infinity": false, "NaN": false, " 1": false, "1 ": false, "1_000": false,
	} {
		if got := isNumber([]byte(s)); got != want {
			t.Errorf("isNumber(%q) = %v; want %v", s, got, want)
		}
	}
}

// lookup finds one path with a trie of one.
func lookup(doc []byte, p path) []byte {
	var t trie
	t.add(p)
	spans := make([]span, 1)
	t.extract(doc, spans)
	return spans[0].value(doc)
}

// refLookup is lookup done with encoding/json, for comparison.
func refLookup(doc []byte, p path) (any, bool) {
	v, err := decode(doc)
	if err != nil {
		return nil, false
	}
	for _, s := range p {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[s.key]; !ok {
				return nil, false
			}
		case []any:
			if s.index < 0 || s.index >= len(c) {
				return nil, false
			}
			v = c[s.index]
		default:
			return nil, false
		}
	}
	return v, true
}

// FuzzLookup checks the one-pass scanner against encoding/json on any
// valid JSON document, with two paths in one trie (they may share a prefix
// or be equal).
func FuzzLookup(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,{"c":"x"}]}}`), "a.b.1.c", "a.b.0")
	f.Add([]byte(`[0,[1,[2]]]`), "1.1.0", "1")
	f.Add([]byte(`{"k\u0041":1,"kA":2}`), "kA", "kA")
	f.Add([]byte(`{"1":{"0":true}}`), "1.0", ".")
	f.Add([]byte(`{"a":{"b":1},"a":{"c":2}}`), "a.b", "a.c")
	f.Add([]byte(readFile(f, "chirpstack/docs-up.json")), "rxInfo.0.snr", "deviceInfo.devEui")
	f.Fuzz(func(t *testing.T, doc []byte, p1, p2 string) {
		if !json.Valid(doc) {
			return
		}
		var tr trie
		var paths []path
		for _, ps := range []string{p1, p2} {
			p, err := parsePath(ps)
			if err != nil {
				return
			}
			tr.add(p)
			paths = append(paths, p)
		}
		spans := make([]span, tr.slots)
		tr.extract(doc, spans)
		for i, p := range paths {
			raw := spans[i].value(doc)
			want, found := refLookup(doc, p)
			if found != (raw != nil) {
				t.Fatalf("path %d: found %q; encoding/json found %v", i, raw, found)
			}
			if !found {
				continue
			}
			got, err := decode(raw)
			if err != nil {
				t.Fatalf("path %d: found %q, not JSON: %v", i, raw, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("path %d: found %v; encoding/json has %v", i, got, want)
			}
		}
	})
}

// decode decodes JSON keeping numbers as written, so that numbers beyond
// float64 compare too.
func decode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}
