package telemetry

import (
	"os"
	"strings"
	"testing"
	"time"
)

// compactExample is the codec 5 worked example of docs/wire.md: the rows
// example as the first batch of context 5eed0001, then the next minute
// once the cloud has acknowledged it.
func compactExample(t *testing.T) (first, second []byte) {
	b := exampleBatch()
	enc := NewCompactEncoder(b.Gateway, b.Site, b.Stream)
	enc.id = fixedID
	first, sent, err := enc.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	enc.Confirm(sent)
	b.FirstSeq, b.Committed = 104, 103
	for i, v := range []float64{65.9, -10.1, 120.4} {
		b.Readings[i].Value = v
		b.Readings[i].Time = b.Readings[i].Time.Add(time.Minute)
	}
	second, sent, err = enc.Encode(b)
	if err != nil || sent.Defined {
		t.Fatalf("%+v, %v", sent, err)
	}
	return first, second
}

// TestCompactWorkedExample keeps docs/wire.md honest about codec 5.
func TestCompactWorkedExample(t *testing.T) {
	first, second := compactExample(t)
	doc, err := os.ReadFile("../docs/wire.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{first, second} {
		if dump := hexLines(data); !strings.Contains(string(doc), dump) {
			t.Errorf("docs/wire.md does not contain the compact example; it should read:\n%s", dump)
		}
	}
}
