package hj212up

import (
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/test/hj212test"
)

// TestLateReadingAfterRestart: after a restart, a late reading of a period
// whose aggregate the platform already confirmed does not open that period
// again: no second 2051 of one DataTime holding only the late reading (the
// last period sent is kept with the cursor).
func TestLateReadingAfterRestart(t *testing.T) {
	p := hj212test.Start(t, hj212test.ModeAck)
	opts, c, wt := minuteSetup(t, p.Addr())
	now := func() time.Time { return t0.Add(11*time.Minute + 30*time.Second) } // the 14:00 period is due
	b, err := buffer.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	r := startAt(t, b, c, now)
	last := mustAppend(t, b, wt(10, 0), wt(11, 1))
	r.waitCursor(t, "plat.minute", last)
	r.stop()
	b.Close()
	sent := 0
	for _, f := range drained(p) {
		if f.CN == "2051" {
			sent++
		}
	}
	if sent != 1 {
		t.Fatalf("%d minute frames before the restart, want 1", sent)
	}
	b, err = buffer.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	r = startAt(t, b, c, now)
	late := mustAppend(t, b, wt(12, 5)) // a slow device's reading of the 14:00 period
	// The cursor passes it only once whatever it caused is confirmed.
	r.waitCursor(t, "plat.minute", late)
	for _, f := range drained(p) {
		if f.CN == "2051" {
			t.Errorf("a second 2051 for a period already sent: %s", f.CP.String())
		}
	}
}
