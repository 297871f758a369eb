package registry

import (
	"slices"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// inventoryFleet is a registry with four gateways: two online in Laoshan
// (one with everything the inventory shows, one an older gateway), one
// offline in Jimo, one online but silent for longer than two heartbeats.
func inventoryFleet(t *testing.T) (*Registry, *time.Time) {
	t.Helper()
	r := New()
	now := t0
	r.now = func() time.Time { return now }
	off, maxErr := -0.002, 0.05
	dev := func(id, health string) telemetry.DeviceState {
		return telemetry.DeviceState{ID: id, Profile: "renke/rs-ecth-n01", Interval: telemetry.Duration(time.Minute), Health: health}
	}
	farm := telemetry.State{State: telemetry.StateOnline, Site: "north", Name: "北区农场 1 号站",
		Version: "0.3.0", Arch: "armv7", Uptime: telemetry.Duration(90 * time.Minute), Time: t0, Started: t0.Add(-90 * time.Minute),
		Buffered: 120, BufferBytes: 1 << 20, BufferMaxBytes: 256 << 20, Heartbeat: telemetry.Duration(time.Minute),
		Clock:   &telemetry.ClockState{Quality: "ntp", OffsetS: &off, MaxErrorS: &maxErr},
		Labels:  map[string]string{"county": "laoshan", "kind": "farm"},
		Config:  &telemetry.ConfigState{Version: 7, Source: "remote"},
		Update:  &telemetry.UpdateState{Serial: 3, Pending: "0.4.0", Phase: "downloading", Downloaded: 1 << 20, Size: 4 << 20},
		Devices: []telemetry.DeviceState{dev("soil-1", "ok"), dev("soil-2", "failing"), dev("soil-3", "quarantined")}}
	r.ObserveState("farm-north", farm, false)
	r.ObserveState("old-gw", telemetry.State{State: telemetry.StateOnline, Site: "north", Version: "0.1.0",
		Time: t0, Started: t0.Add(-time.Hour), Devices: []telemetry.DeviceState{dev("air-1", "ok")}}, false)
	r.ObserveState("buoy-7", telemetry.State{State: telemetry.StateOnline, Site: "sea", Version: "0.3.0", Arch: "arm64",
		Uptime: telemetry.Duration(time.Hour), Time: t0, Labels: map[string]string{"county": "jimo", "kind": "buoy"},
		Clock: &telemetry.ClockState{Quality: "gps"}}, false)
	r.ObserveState("buoy-7", telemetry.State{State: telemetry.StateOffline, Time: t0.Add(time.Minute)}, false)
	r.ObserveState("pond-3", telemetry.State{State: telemetry.StateOnline, Site: "pond", Version: "0.3.0", Arch: "amd64",
		Uptime: telemetry.Duration(time.Minute), Time: t0, Heartbeat: telemetry.Duration(30 * time.Second),
		Labels: map[string]string{"county": "laoshan", "kind": "pond"}}, false)
	now = t0.Add(50 * time.Second)
	farm.Time, farm.Uptime = now, telemetry.Duration(90*time.Minute+50*time.Second)
	r.ObserveState("farm-north", farm, false)
	now = t0.Add(70 * time.Second) // pond-3: 70 s > 2 × 30 s + 5 s
	return r, &now
}

func ids(rows []InventoryRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}

func TestInventoryFilters(t *testing.T) {
	r, _ := inventoryFleet(t)
	for _, tc := range []struct {
		name string
		f    InventoryFilter
		want []string
	}{
		{"all", InventoryFilter{}, []string{"buoy-7", "farm-north", "old-gw", "pond-3"}},
		{"one label", InventoryFilter{Labels: map[string]string{"county": "laoshan"}}, []string{"farm-north", "pond-3"}},
		{"two labels, AND", InventoryFilter{Labels: map[string]string{"county": "laoshan", "kind": "pond"}}, []string{"pond-3"}},
		{"a label nobody has", InventoryFilter{Labels: map[string]string{"county": "chengyang"}}, nil},
		{"a label key alone does not match", InventoryFilter{Labels: map[string]string{"county": ""}}, nil},
		{"site", InventoryFilter{Site: "north"}, []string{"farm-north", "old-gw"}},
		{"online", InventoryFilter{State: Online}, []string{"farm-north", "old-gw", "pond-3"}},
		{"offline", InventoryFilter{State: Offline}, []string{"buoy-7"}},
		{"site and label", InventoryFilter{Site: "north", Labels: map[string]string{"kind": "farm"}}, []string{"farm-north"}},
	} {
		if got := ids(r.Inventory(tc.f)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestInventoryRows(t *testing.T) {
	r, now := inventoryFleet(t)
	rows := map[string]InventoryRow{}
	for _, row := range r.Inventory(InventoryFilter{}) {
		rows[row.ID] = row
	}
	farm := rows["farm-north"]
	if farm.Arch != "armv7" || farm.Version != "0.3.0" || farm.ConfigVersion == nil || *farm.ConfigVersion != 7 ||
		farm.ConfigSource != "remote" || farm.UptimeS == nil || *farm.UptimeS != 90*60+50 || farm.Backlog != 120 ||
		farm.BufferBytes != 1<<20 || farm.BufferMaxBytes != 256<<20 || farm.ClockQuality != "ntp" ||
		*farm.ClockOffsetS != -0.002 || *farm.ClockMaxErrorS != 0.05 || farm.Devices != 3 || farm.FaultyDevices != 2 ||
		farm.Stale || farm.State != Online || !farm.LastSeen.Equal(t0.Add(50*time.Second)) || farm.Name != "北区农场 1 号站" {
		t.Errorf("farm-north %+v", farm)
	}
	if farm.Update != "0.4.0 downloading 25%" || rows["old-gw"].Update != "" {
		t.Errorf("update: farm-north %q, old-gw %q", farm.Update, rows["old-gw"].Update)
	}
	if st, _ := r.Station("farm-north"); st.Update == nil || st.Update.Serial != 3 {
		t.Errorf("the station's update: %+v", st.Update)
	}
	for _, tc := range []struct {
		id            string
		state         string
		stale         bool
		uptime        int64 // -1: absent
		config, clock bool
		devices       int
	}{
		{"farm-north", Online, false, 90*60 + 50, true, true, 3},
		{"old-gw", Online, false, 3600, false, false, 1}, // no heartbeat: never stale; uptime from started and time
		{"buoy-7", Offline, false, 3600, false, true, 0}, // the last will keeps what the last online state said
		{"pond-3", Online, true, 60, false, false, 0},
	} {
		row := rows[tc.id]
		uptime := int64(-1)
		if row.UptimeS != nil {
			uptime = *row.UptimeS
		}
		if row.State != tc.state || row.Stale != tc.stale || uptime != tc.uptime || (row.ConfigVersion != nil) != tc.config ||
			(row.ClockQuality != "") != tc.clock || row.Devices != tc.devices || row.Labels == nil {
			t.Errorf("%s: %+v, want %+v", tc.id, row, tc)
		}
	}
	// The rows are copies: changing one does not change the registry.
	farm.Labels["county"] = "elsewhere"
	*farm.ClockOffsetS = 99
	if again := r.Inventory(InventoryFilter{Labels: map[string]string{"county": "laoshan"}}); len(again) != 2 || *again[0].ClockOffsetS != -0.002 {
		t.Errorf("a row shares the registry's memory: %+v", again)
	}
	// A state without the inventory's fields clears them (a gateway downgraded).
	r.ObserveState("farm-north", telemetry.State{State: telemetry.StateOnline, Site: "north", Time: *now}, false)
	if got := r.Inventory(InventoryFilter{Site: "north"}); got[0].Arch != "" || len(got[0].Labels) != 0 || got[0].ClockQuality != "" {
		t.Errorf("after an older state: %+v", got[0])
	}
}

// TestInventoryFromDataOnly: a gateway known only from the store (after a
// restart, before its state) counts the devices its data showed.
func TestInventoryFromDataOnly(t *testing.T) {
	r := New()
	r.ObserveBatch(batch("gw1", rd("soil-1", "soil_moisture", 30, t0), rd("soil-2", "soil_moisture", 31, t0)))
	rows := r.Inventory(InventoryFilter{})
	if len(rows) != 1 || rows[0].Devices != 2 || rows[0].UptimeS != nil || rows[0].Site != "north" {
		t.Fatalf("%+v", rows)
	}
}
