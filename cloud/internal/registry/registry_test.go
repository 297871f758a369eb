package registry

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

var t0 = time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)

func batch(gw string, rs ...telemetry.Reading) *telemetry.Batch {
	return &telemetry.Batch{Gateway: gw, Site: "north", Stream: "s", FirstSeq: 1, Readings: rs}
}

func rd(dev, metric string, v float64, at time.Time) telemetry.Reading {
	return telemetry.Reading{Device: dev, Metric: metric, Value: v, Unit: "%", Time: at}
}

func TestLatestNeverMovesBack(t *testing.T) {
	r := New()
	now := t0
	r.now = func() time.Time { return now }
	r.ObserveBatch(batch("gw1", rd("soil-1", "soil_moisture", 30, t0.Add(time.Minute))))
	// A replay or a backlog batch with older readings arrives later.
	r.ObserveBatch(batch("gw1", rd("soil-1", "soil_moisture", 25, t0)))
	st, ok := r.Station("gw1")
	if !ok || len(st.Devices) != 1 {
		t.Fatalf("station %+v", st)
	}
	if v := st.Devices[0].Latest[0].Value; *v != 30 {
		t.Fatalf("latest = %v, want the newer 30", *v)
	}
	if !st.Devices[0].LastSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("last seen %v", st.Devices[0].LastSeen)
	}
}

func TestStates(t *testing.T) {
	r := New()
	now := t0
	r.now = func() time.Time { return now }
	r.ObserveState("gw1", telemetry.State{State: telemetry.StateOnline, Site: "north", Time: t0,
		Name: "北区农场 1 号站", SiteName: "北区", Location: &telemetry.Location{Lat: 45, Lon: 126},
		Devices: []telemetry.DeviceState{
			{ID: "soil-1", Profile: "renke/rs-ecth-n01", Interval: telemetry.Duration(10 * time.Second), Health: "ok"},
			{ID: "air-1", Profile: "renke/rs-ws-n01-8", Interval: telemetry.Duration(10 * time.Second), Health: "failing", Error: "timeout"},
			{ID: "never", Profile: "renke/rs-ws-n01-8", Interval: telemetry.Duration(10 * time.Second), Health: "unknown"},
		}}, false)
	r.ObserveBatch(batch("gw1", rd("soil-1", "soil_moisture", 30, t0)))
	states := func() map[string]string {
		st, _ := r.Station("gw1")
		m := map[string]string{"station": st.State}
		for _, d := range st.Devices {
			m[d.ID] = d.State
		}
		return m
	}
	want := map[string]string{"station": Online, "soil-1": DeviceOK, "air-1": DeviceFailing, "never": DeviceUnknown}
	if got := states(); !equal(got, want) {
		t.Fatalf("states %v, want %v", got, want)
	}
	now = t0.Add(time.Minute) // 6 intervals without soil-1
	if got := states()["soil-1"]; got != DeviceLate {
		t.Fatalf("soil-1 is %s after a minute of silence, want late", got)
	}
	// The last will: the station is offline and its devices unknown, not late.
	r.ObserveState("gw1", telemetry.State{State: telemetry.StateOffline, Time: t0.Add(time.Minute)}, false)
	want = map[string]string{"station": Offline, "soil-1": DeviceUnknown, "air-1": DeviceUnknown, "never": DeviceUnknown}
	if got := states(); !equal(got, want) {
		t.Fatalf("offline: %v, want %v", got, want)
	}
	// A late-delivered older state does not undo the newer one.
	r.ObserveState("gw1", telemetry.State{State: telemetry.StateOnline, Time: t0}, false)
	if got := states()["station"]; got != Offline {
		t.Fatalf("older online state won: %s", got)
	}
	st, _ := r.Station("gw1")
	// The last will says nothing of names: they stay.
	if st.Location == nil || st.Location.Lat != 45 || st.Site != "north" || st.Name != "北区农场 1 号站" || st.SiteName != "北区" {
		t.Fatalf("description lost: %+v", st)
	}
}

func TestSeedAndNaN(t *testing.T) {
	r := NewWithClock(func() time.Time { return t0 }) // "just now" on any machine
	v := 12.0
	r.Seed([]store.Sample{{Gateway: "gw2", Site: "east", Device: "d", Metric: "m", Time: t0, Value: &v}})
	r.ObserveBatch(batch("gw2", telemetry.Reading{Device: "d", Metric: "m2", Value: math.NaN(), Quality: telemetry.Bad, Time: t0}))
	st, _ := r.Station("gw2")
	if st.Site != "east" && st.Site != "north" {
		t.Fatalf("site %q", st.Site)
	}
	latest := st.Devices[0].Latest
	if len(latest) != 2 || *latest[0].Value != 12 || latest[1].Value != nil || latest[1].Quality != telemetry.Bad {
		t.Fatalf("latest %+v", latest)
	}
	if st.State != Online {
		t.Fatalf("a station heard from just now is %s", st.State)
	}
	if got := len(r.Stations()); got != 1 {
		t.Fatalf("%d stations", got)
	}
}

func TestEventsAndPositions(t *testing.T) {
	r := New()
	b := batch("gw1", rd("buoy", "latitude", 36.05, t0), rd("buoy", "longitude", 120.41, t0))
	ev := func(state string, count float64) telemetry.Event {
		return telemetry.Event{Device: "gate", Kind: telemetry.EventTag, Key: "t1", Time: t0,
			Attrs: map[string]string{"state": state}, Values: map[string]float64{"count": count}}
	}
	b.Events = []telemetry.Event{ev("present", 1)}
	r.ObserveBatch(b)
	r.ObserveBatch(&telemetry.Batch{Gateway: "gw1", Stream: "s", FirstSeq: 5, Events: []telemetry.Event{ev("gone", 40)}})
	st, _ := r.Station("gw1")
	if len(st.Events) != 1 || st.Events[0].Attrs["state"] != "gone" || st.Events[0].Values["count"] != 40 {
		t.Fatalf("the update did not replace the event: %+v", st.Events)
	}
	for _, d := range st.Devices {
		switch d.ID {
		case "buoy":
			if d.Location == nil || d.Location.Lat != 36.05 || d.Location.Lon != 120.41 {
				t.Fatalf("buoy position %+v", d.Location)
			}
		case "gate":
			if d.Events != 2 || d.LastSeen.IsZero() {
				t.Fatalf("reader %+v", d)
			}
		}
	}
	for i := 0; i < 2*recentEvents; i++ {
		e := ev("present", 1)
		e.Key, e.Time = fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second)
		r.ObserveBatch(&telemetry.Batch{Gateway: "gw1", Stream: "s", FirstSeq: 10, Events: []telemetry.Event{e}})
	}
	st, _ = r.Station("gw1")
	if len(st.Events) != recentEvents || st.Events[0].Key != fmt.Sprint(2*recentEvents-1) {
		t.Fatalf("recent events: %d, newest %q", len(st.Events), st.Events[0].Key)
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestQuietAndLearnedPace: a reader's silence is not lateness, and a device
// the gateway did not declare (a LoRaWAN sensor behind an MQTT source) is
// judged by the pace of its own readings.
func TestQuietAndLearnedPace(t *testing.T) {
	r := New()
	now := t0
	r.now = func() time.Time { return now }
	r.ObserveState("gw1", telemetry.State{State: telemetry.StateOnline, Time: t0, Devices: []telemetry.DeviceState{
		{ID: "gate-reader", Profile: "allflex/rs420", Health: "ok", Quiet: true},
		{ID: "desk-reader", Profile: "priority/rdm6300", Health: "failing", Quiet: true, Error: "cannot open"},
	}}, false)
	// A LoRaWAN sensor reports every 20 minutes, once retransmitted a
	// second later.
	at := t0
	for i := range 5 {
		r.ObserveBatch(batch("gw1", rd("a84041000181c0e1", "soil_moisture", 30, at)))
		if i == 3 {
			r.ObserveBatch(batch("gw1", rd("a84041000181c0e1", "soil_moisture", 30, at.Add(time.Second))))
		}
		at = at.Add(20 * time.Minute)
	}
	last := at.Add(-20 * time.Minute)
	tests := []struct {
		after time.Duration
		want  map[string]string
	}{
		{25 * time.Minute, map[string]string{"gate-reader": DeviceOK, "desk-reader": DeviceFailing, "a84041000181c0e1": DeviceOK}},
		{50 * time.Minute, map[string]string{"gate-reader": DeviceOK, "a84041000181c0e1": DeviceOK}},
		{2 * time.Hour, map[string]string{"gate-reader": DeviceOK, "a84041000181c0e1": DeviceLate}},
	}
	for _, tt := range tests {
		now = last.Add(tt.after)
		st, _ := r.Station("gw1")
		for _, d := range st.Devices {
			if want, ok := tt.want[d.ID]; ok && d.State != want {
				t.Errorf("%v after the last reading: %s is %s, want %s", tt.after, d.ID, d.State, want)
			}
		}
	}
}

// TestEventsAboutDevicesAreNotSignsOfLife: a quarantine event says the
// device does not answer, a gap event is the gateway's own; neither moves
// a device's last sign of life, and the gateway is not taken for a device.
func TestEventsAboutDevicesAreNotSignsOfLife(t *testing.T) {
	r := NewWithClock(func() time.Time { return t0.Add(time.Hour) })
	r.ObserveBatch(batch("gw1", rd("soil-1", "soil_moisture", 30, t0)))
	b := &telemetry.Batch{Gateway: "gw1", Stream: "s", FirstSeq: 2, Events: []telemetry.Event{
		{Device: "soil-1", Kind: telemetry.EventQuarantine, Time: t0.Add(time.Minute), Attrs: map[string]string{"state": "quarantined"}},
		{Device: "gw1", Kind: telemetry.EventGap, Time: t0.Add(time.Minute), Values: map[string]float64{"count": 3}},
		{Device: "gate", Kind: telemetry.EventTag, Key: "t1", Time: t0.Add(2 * time.Minute)},
	}}
	r.Heard(b)
	r.ObserveBatch(b)
	_, devs := r.Expected()
	seen := map[string]time.Time{}
	for _, d := range devs {
		seen[d.Device] = d.LastSeen
	}
	if len(seen) != 2 || !seen["soil-1"].Equal(t0) || !seen["gate"].Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("devices and their last signs of life: %v", seen)
	}
	if st, _ := r.Station("gw1"); len(st.Events) != 3 {
		t.Fatalf("the station's events: %+v", st.Events)
	}
}

// TestDevicesPerGatewayBounded: a gateway's state messages and batches add
// devices up to the bound and no further; what is refused is counted, the
// devices already known keep being updated, and another gateway has a bound
// of its own.
func TestDevicesPerGatewayBounded(t *testing.T) {
	devs := func(prefix string, n int) []telemetry.DeviceState {
		var ds []telemetry.DeviceState
		for i := range n {
			ds = append(ds, telemetry.DeviceState{ID: fmt.Sprintf("%s-%d", prefix, i), Health: "ok"})
		}
		return ds
	}
	tests := []struct {
		name        string
		max         int
		states      [][]telemetry.DeviceState
		batchDevs   []string
		wantDevices int
		wantRefused []int // per call: the states, then the batch (ObserveBatch)
	}{
		{"under the bound", 4, [][]telemetry.DeviceState{devs("a", 3)}, []string{"a-0"}, 3, []int{0, 0}},
		{"at the bound", 3, [][]telemetry.DeviceState{devs("a", 3)}, nil, 3, []int{0, 0}},
		{"a flood of ids", 4, [][]telemetry.DeviceState{devs("a", 3), devs("b", 100), devs("c", 100)}, nil, 4, []int{0, 99, 100, 0}},
		{"a repeated flood is refused each time", 2, [][]telemetry.DeviceState{devs("a", 5), devs("a", 5)}, nil, 2, []int{3, 3, 0}},
		{"batch devices count too", 2, [][]telemetry.DeviceState{devs("a", 2)}, []string{"a-0", "x", "y", "x"}, 2, []int{0, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := New()
			r.SetMaxDevices(tc.max)
			var refused []int
			for i, ds := range tc.states {
				refused = append(refused, r.ObserveState("gw1", telemetry.State{State: telemetry.StateOnline,
					Time: t0.Add(time.Duration(i) * time.Second), Devices: ds}, false))
			}
			var rs []telemetry.Reading
			for _, d := range tc.batchDevs {
				rs = append(rs, rd(d, "soil_moisture", 30, t0))
			}
			refused = append(refused, r.ObserveBatch(batch("gw1", rs...)))
			if fmt.Sprint(refused) != fmt.Sprint(tc.wantRefused) {
				t.Fatalf("refused %v, want %v", refused, tc.wantRefused)
			}
			st, _ := r.Station("gw1")
			if len(st.Devices) != tc.wantDevices {
				t.Fatalf("%d devices, want %d", len(st.Devices), tc.wantDevices)
			}
			total := 0
			for _, n := range tc.wantRefused {
				total += n
			}
			if st.DevicesRefused != uint64(total) {
				t.Fatalf("station counts %d refused, want %d", st.DevicesRefused, total)
			}
			// Another gateway is not affected by this one's flood.
			if n := r.ObserveState("gw2", telemetry.State{State: telemetry.StateOnline, Devices: devs("z", tc.max)}, false); n != 0 {
				t.Fatalf("gw2 refused %d", n)
			}
		})
	}
}

// TestDefaultMaxDevices: without SetMaxDevices the bound is
// DefaultMaxDevices, and a batch's refused device does not reach the
// expected devices (no-data alerts) either.
func TestDefaultMaxDevices(t *testing.T) {
	r := New()
	var ds []telemetry.DeviceState
	for i := range DefaultMaxDevices + 10 {
		ds = append(ds, telemetry.DeviceState{ID: fmt.Sprintf("d-%d", i)})
	}
	if n := r.ObserveState("gw1", telemetry.State{State: telemetry.StateOnline, Devices: ds}, false); n != 10 {
		t.Fatalf("refused %d, want 10", n)
	}
	if n := r.Heard(batch("gw1", rd("new", "m", 1, t0))); n != 1 {
		t.Fatalf("Heard refused %d, want 1", n)
	}
	if _, exp := r.Expected(); len(exp) != DefaultMaxDevices {
		t.Fatalf("%d expected devices, want %d", len(exp), DefaultMaxDevices)
	}
}

// TestMooring: a buoy's mooring from its gateway's state is on the station's
// device; a later state without it (the mooring removed from the gateway's
// config) takes it away; the API's copy is not the registry's.
func TestMooring(t *testing.T) {
	r := New()
	r.now = func() time.Time { return t0 }
	m := telemetry.Mooring{Lat: 36.06, Lon: 120.38, RadiusM: 150}
	r.ObserveState("gw1", telemetry.State{State: telemetry.StateOnline, Time: t0,
		Devices: []telemetry.DeviceState{{ID: "buoy", Mooring: &m}, {ID: "probe"}}}, false)
	st, _ := r.Station("gw1")
	if got := st.Devices[0].Mooring; st.Devices[0].ID != "buoy" || got == nil || *got != m || st.Devices[1].Mooring != nil {
		t.Fatalf("devices %+v", st.Devices)
	}
	st.Devices[0].Mooring.RadiusM = 1
	m.RadiusM = 2
	if st, _ = r.Station("gw1"); st.Devices[0].Mooring.RadiusM != 150 {
		t.Fatalf("the registry's mooring changed with a copy: %+v", st.Devices[0].Mooring)
	}
	r.ObserveState("gw1", telemetry.State{State: telemetry.StateOnline, Time: t0.Add(time.Second),
		Devices: []telemetry.DeviceState{{ID: "buoy"}}}, false)
	if st, _ = r.Station("gw1"); st.Devices[0].Mooring != nil {
		t.Fatalf("mooring kept after the gateway stopped sending it: %+v", st.Devices[0].Mooring)
	}
}

// TestConfigState: the configuration a gateway reports is the station's,
// copied; a state without it (an older gateway) clears it.
func TestConfigState(t *testing.T) {
	r := New()
	r.now = func() time.Time { return t0 }
	c := telemetry.ConfigState{Version: 3, Source: "remote", Error: "rolled back",
		Rollback: &telemetry.ConfigRollback{From: 4, To: 3, At: t0, Reason: "no reading from soil-1"}}
	r.ObserveState("gw1", telemetry.State{State: telemetry.StateOnline, Time: t0, Config: &c}, false)
	st, _ := r.Station("gw1")
	if st.Config == nil || st.Config.Version != 3 || st.Config.Rollback == nil || st.Config.Rollback.From != 4 {
		t.Fatalf("config %+v", st.Config)
	}
	st.Config.Rollback.From = 99
	c.Rollback.From = 98
	if st, _ = r.Station("gw1"); st.Config.Rollback.From != 4 {
		t.Fatalf("the registry's config changed with a copy: %+v", st.Config.Rollback)
	}
	r.ObserveState("gw1", telemetry.State{State: telemetry.StateOnline, Time: t0.Add(time.Second)}, false)
	if st, _ = r.Station("gw1"); st.Config != nil {
		t.Fatalf("config kept after a state without it: %+v", st.Config)
	}
}
