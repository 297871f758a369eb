package cli

import (
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/gateway/internal/app"
)

// TestPrintHJ212: one line per uplink and kind, with its cursor.
func TestPrintHJ212(t *testing.T) {
	var b strings.Builder
	printHJ212(&b, []app.HJ212Status{{Name: "hj212-MN1", Address: "10.1.2.3:6000", MN: "MN1", Connected: true,
		Kinds: []app.HJ212Cursor{{Kind: "realtime", Confirmed: 120, Pending: 3}, {Kind: "hour", Confirmed: 80, Pending: 43, Dropped: 7}}}})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "HJ 212 UPLINK") ||
		strings.Join(strings.Fields(lines[2]), " ") != "hj212-MN1 10.1.2.3:6000 MN1 connected hour 80 43 7" {
		t.Fatalf("%q", lines)
	}
}
