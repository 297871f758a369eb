package engine

import (
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
)

func TestServed(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	took := t0.Add(time.Hour) // when this replica took gw-a's partition
	e := &Engine{o: Options{Serves: func(gw string) (bool, time.Time) { return gw == "gw-a", took }}}
	gws := []registry.GatewayView{{ID: "gw-a"}, {ID: "gw-b"}}
	devs := []registry.Expected{
		{Gateway: "gw-a", Device: "heard-before", LastSeen: t0},
		{Gateway: "gw-a", Device: "heard-after", LastSeen: took.Add(time.Minute)},
		{Gateway: "gw-a", Device: "never"},
		{Gateway: "gw-a", Device: "reader", Quiet: true, Health: "failing", HealthSince: t0},
		{Gateway: "gw-b", Device: "other", LastSeen: t0},
	}
	g, d := e.served(gws, devs)
	if len(g) != 1 || g[0].ID != "gw-a" {
		t.Fatalf("gateways judged %v, want gw-a only", g)
	}
	want := map[string]time.Time{"heard-before": took, "heard-after": took.Add(time.Minute), "never": took}
	for _, x := range d {
		if x.Gateway != "gw-a" {
			t.Fatalf("device %s of %s judged", x.Device, x.Gateway)
		}
		if x.Quiet {
			if !x.HealthSince.Equal(took) {
				t.Errorf("reader failing since %v, want from the takeover %v", x.HealthSince, took)
			}
			continue
		}
		if !x.LastSeen.Equal(want[x.Device]) {
			t.Errorf("%s last seen %v, want %v", x.Device, x.LastSeen, want[x.Device])
		}
	}
	if len(d) != 4 {
		t.Fatalf("%d devices judged, want 4", len(d))
	}
	if devs[0].LastSeen != t0 {
		t.Fatal("the registry's view was changed in place")
	}
	all := &Engine{}
	if g, d := all.served(gws, devs); len(g) != 2 || len(d) != 5 {
		t.Fatal("without Serves every gateway is judged")
	}
}
