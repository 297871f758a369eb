package config

import (
	"fmt"
	"strings"
	"testing"
)

// withLabels is fleetBase with a gateway.labels section, its entries from
// line 4.
func withLabels(labels string) []byte {
	return []byte(strings.Replace(fleetBase, "gateway: {id: gw1}\n", "gateway:\n  id: gw1\n  labels:\n"+labels, 1))
}

// TestLabels: gateway.labels, and each bad label's error with file, line
// and field.
func TestLabels(t *testing.T) {
	c, err := Load("g.yaml", withLabels("    county: laoshan\n    kind: buoy\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Gateway.Labels) != 2 || c.Gateway.Labels["county"] != "laoshan" || c.Gateway.Labels["kind"] != "buoy" {
		t.Fatalf("labels %v", c.Gateway.Labels)
	}
	if c, err := Load("g.yaml", []byte(fleetBase)); err != nil || c.Gateway.Labels != nil {
		t.Fatalf("no labels: %v, %v", c.Gateway.Labels, err)
	}
	var many strings.Builder
	for i := range 17 {
		fmt.Fprintf(&many, "    k%d: v\n", i)
	}
	for _, tc := range []struct{ labels, want string }{
		{"    county: laoshan\n    kind: \"浮标\"\n", `g.yaml:5: gateway.labels.kind: label kind value id "浮标": character`},
		{"    county: laoshan\n    \"a b\": x\n", `g.yaml:5: gateway.labels.a b: label id "a b": character ' ' at 1 is not allowed`},
		{"    county: \"\"\n", `g.yaml:4: gateway.labels.county: label county value id is empty`},
		{"    county: [a, b]\n", `g.yaml:4: gateway.labels.county: expected a single value, found a list`},
		{"    -county: x\n", `g.yaml:4: gateway.labels.-county: label id "-county"`},
		{many.String(), "g.yaml:3: gateway.labels: 17 labels, more than 16"},
	} {
		_, err := Load("g.yaml", withLabels(tc.labels))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.labels, err, tc.want)
		}
	}
}
