package sl651listen

import (
	"bytes"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/protocols/sl651"
)

var (
	st1 = sl651.Address{0x00, 0x12, 0x34, 0x56, 0x78} // the published 2F/30 station
	st2 = sl651.Address{0x00, 0x11, 0x22, 0x33, 0x44} // the published 32/33/34 station
)

// TestPublishedFrames sends the published HEX frames (docs/standards/sl651.md,
// S2) over TCP: each is taken, its values stored under our metrics at their
// observation times (Beijing time converted to UTC), and answered with the
// confirmation the same source publishes, or nothing for a keep-alive.
func TestPublishedFrames(t *testing.T) {
	tests := []struct {
		name    string
		central int
		address string
		frame   string
		reply   string // "" for none
		latest  map[string]string
	}{
		{name: "2F keep-alive", central: 1, address: "0012345678",
			frame: "7E7E01001234567812342F0008020003591011155111036BCA"},
		{name: "30 test", central: 1, address: "0012345678",
			frame: "7E7E010012345678123430002B020003591011154947F1F1001234567848F0F0591011154920190000052619000005392300000127381211150320FA",
			reply: "7E7E00123456780112343080080200035910111549471B75D4",
			latest: map[string]string{
				"0012345678/rainfall_current": "0.5 mm @2059-10-11T07:49:00Z",
				"0012345678/rainfall":         "0.5 mm @2059-10-11T07:49:00Z",
				"0012345678/water_level":      "0.127 m @2059-10-11T07:49:00Z",
				"0012345678/supply_voltage":   "11.15 V @2059-10-11T07:49:00Z",
			}},
		{name: "32 timed", central: 5, address: "0011223344",
			frame: "7E7E05001122334403E832002B020034170718110016F1F1001122334448F0F01707181100201900004026190000403923000104903812109903A421",
			reply: "7E7E00112233440503E83280080200341707181100161BE5D4",
			latest: map[string]string{
				"0011223344/rainfall_current": "4 mm @2017-07-18T03:00:00Z",
				"0011223344/rainfall":         "4 mm @2017-07-18T03:00:00Z",
				"0011223344/water_level":      "10.49 m @2017-07-18T03:00:00Z",
				"0011223344/supply_voltage":   "10.99 V @2017-07-18T03:00:00Z",
			}},
		{name: "33 added", central: 5, address: "0011223344",
			frame: "7E7E05001122334403E833002B020026170718102202F1F1001122334448F0F01707181022201900004026190000403923000104903812110203F511",
			reply: "7E7E00112233440503E83380080200261707181022021B",
			latest: map[string]string{
				"0011223344/rainfall_current": "4 mm @2017-07-18T02:22:00Z",
				"0011223344/rainfall":         "4 mm @2017-07-18T02:22:00Z",
				"0011223344/water_level":      "10.49 m @2017-07-18T02:22:00Z",
				"0011223344/supply_voltage":   "11.02 V @2017-07-18T02:22:00Z",
			}},
		{name: "34 hourly", central: 5, address: "0011223344",
			frame: "7E7E05001122334403E8340068020033170718110014F1F1001122334448F0F01707181005F4600500000014FFFFFFFFFF0000F0F017071811002619000040F0F01707181005F5C0000C000C001C00310031FFFFFFFFFFFFFFFFFFFF00310031F0F0170718110039230001049020190000403812109903F502",
			reply: "7E7E00112233440503E83480080200331707181100141B",
			latest: map[string]string{
				// The newest of each series: DRP's and DRZ1's twelfth value (11:00 Beijing).
				"0011223344/rainfall_5min":        "0 mm @2017-07-18T03:00:00Z",
				"0011223344/water_level_relative": "0.49 m @2017-07-18T03:00:00Z",
				"0011223344/rainfall":             "4 mm @2017-07-18T03:00:00Z",
				"0011223344/water_level":          "10.49 m @2017-07-18T03:00:00Z",
				"0011223344/rainfall_current":     "4 mm @2017-07-18T03:00:00Z",
				"0011223344/supply_voltage":       "10.99 V @2017-07-18T03:00:00Z",
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, config.SL651{Central: tc.central, Stations: []config.SL651Station{
				{Address: tc.address, Station: "hydro-1", Site: "river", Name: "北河 1 号站"}}})
			c := r.dial(t)
			c.send(mustHex(t, tc.frame))
			if tc.reply != "" {
				got := encode(t, c.confirm())
				want := mustHex(t, tc.reply)
				if len(want) < 25 { // CRC not published: compare up to it
					got = got[:len(want)]
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("confirmation % X\nwant         % X", got, want)
				}
			} else {
				// Nothing is answered: the next frame's confirmation is the
				// first thing the station reads. The keep-alive counted first.
				c.send(mustHex(t, "7E7E010012345678123430002B020003591011154947F1F1001234567848F0F0591011154920190000052619000005392300000127381211150320FA"))
				if f := c.confirm(); f.Function != sl651.FnTest {
					t.Fatalf("first answer is to function %02X, want the 30 sent after the keep-alive", f.Function)
				}
			}
			fn := tc.name[:2]
			if n := testutil.ToFloat64(r.l.m.frames.WithLabelValues(fn)); n != 1 {
				t.Errorf("frames{function=%s} = %v, want 1", fn, n)
			}
			s, ok := r.reg.Station("hydro-1")
			if !ok || s.State != registry.Online || s.Name != "北河 1 号站" || s.Site != "river" || len(s.Devices) != 1 ||
				s.Devices[0].ID != tc.address || s.Devices[0].Profile != Profile {
				t.Fatalf("registry: %+v", s)
			}
			if tc.latest == nil {
				return
			}
			got := r.latest(t, "hydro-1")
			for k, v := range tc.latest {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if len(got) != len(tc.latest) {
				t.Errorf("stored %v, want %v", got, tc.latest)
			}
		})
	}
}

// TestHourlySeries checks every value of the published hourly report: the
// twelve 5-minute rainfalls and relative levels at their own times, the
// station's "no data" values kept as bad readings without a value.
func TestHourlySeries(t *testing.T) {
	r := startRig(t, config.SL651{Central: 5, Stations: []config.SL651Station{{Address: "0011223344", Station: "hydro-1"}}})
	c := r.dial(t)
	c.send(mustHex(t, "7E7E05001122334403E8340068020033170718110014F1F1001122334448F0F01707181005F4600500000014FFFFFFFFFF0000F0F017071811002619000040F0F01707181005F5C0000C000C001C00310031FFFFFFFFFFFFFFFFFFFF00310031F0F0170718110039230001049020190000403812109903F502"))
	c.confirm()
	from := time.Date(2017, 7, 18, 2, 0, 0, 0, time.UTC)
	for _, s := range []struct {
		metric string
		want   []string
	}{
		{"rainfall_5min", []string{"0.5", "0", "0", "0", "2", "-", "-", "-", "-", "-", "0", "0"}},
		{"water_level_relative", []string{"0.12", "0.12", "0.28", "0.49", "0.49", "-", "-", "-", "-", "-", "0.49", "0.49"}},
	} {
		got := r.series(t, "hydro-1", "0011223344", s.metric, from)
		if len(got) != 12 {
			t.Fatalf("%s: %d samples, want 12: %v", s.metric, len(got), got)
		}
		for i, g := range got {
			want := from.Add(5*time.Minute+time.Duration(i)*5*time.Minute).Format("15:04") + " " + s.want[i]
			if g != want {
				t.Errorf("%s[%d] = %q, want %q", s.metric, i, g, want)
			}
		}
	}
}

// TestBuiltFrames sends frames written by the codec: a timed report in
// ASCII, a uniform-interval report (31) in both encodings, expanded into
// readings at their times, and an element mapped to another metric or
// dropped by the station's overrides.
func TestBuiltFrames(t *testing.T) {
	sent := time.Date(2026, 12, 2, 8, 0, 30, 0, cst)
	obs := time.Date(2026, 12, 2, 8, 0, 0, 0, cst)
	for _, enc := range []sl651.Encoding{sl651.HEX, sl651.ASCII} {
		t.Run(enc.String(), func(t *testing.T) {
			r := startRig(t, config.SL651{Central: 1, Stations: []config.SL651Station{{Address: "0012345678", Station: "hydro-1",
				Elements: map[string]string{"VT": "battery", "PN05": "-"}}}})
			c := r.dial(t)
			f := report(t, enc, sl651.FnTimed, 1, st1, 0x1234, 7, sent, obs,
				ev{0x39, 12.345}, ev{0x26, 1234.5}, ev{0x27, 3.5}, ev{0x38, 12.6}, ev{0x22, 0.5})
			c.send(encode(t, f))
			cf := c.confirm()
			if !cf.Down || cf.Function != sl651.FnTimed || cf.End != sl651.ESC || cf.Encoding != enc {
				t.Fatalf("confirmation %+v", cf)
			}
			// 31: Z every 5 minutes from 07:00, one missing.
			step := sl651.Item{ID: 0x04, Def: 0x18, Data: []byte{0, 0, 5}}
			series := sl651.Item{ID: 0x39, Series: enc == sl651.ASCII}
			vals := []float64{1.1, 1.2, -1, 1.4}
			for _, v := range vals {
				it, err := sl651.NumberItem(0x39, v, v >= 0, enc)
				if err != nil {
					t.Fatal(err)
				}
				series.Def = it.Def
				if enc == sl651.ASCII && len(series.Data) > 0 {
					series.Data = append(series.Data, ' ')
				}
				series.Data = append(series.Data, it.Data...)
			}
			if enc == sl651.ASCII {
				step = sl651.Item{ID: 0x04, Data: []byte("N05")}
				series.Def = 0
			}
			first := time.Date(2026, 12, 2, 7, 0, 0, 0, cst)
			rep := sl651.Report{Serial: 8, SendTime: sent.Add(time.Minute),
				Items: []sl651.Item{addrItem(enc, st1), timeItem(enc, first), step, series}}
			body, err := rep.Body(enc, cst)
			if err != nil {
				t.Fatal(err)
			}
			c.send(encode(t, sl651.Frame{Encoding: enc, Center: 1, Station: st1, Password: 0x1234, Function: sl651.FnInterval,
				Start: sl651.STX, Body: body, End: sl651.ETX}))
			if cf := c.confirm(); cf.Function != sl651.FnInterval {
				t.Fatalf("confirmation of function %02X", cf.Function)
			}
			got := r.latest(t, "hydro-1")
			want := map[string]string{
				"0012345678/water_level": "12.345 m @2026-12-02T00:00:00Z",
				"0012345678/rainfall":    "1234.5 mm @2026-12-02T00:00:00Z",
				"0012345678/flow":        "3.5 m³/s @2026-12-02T00:00:00Z",
				"0012345678/battery":     "12.6 V @2026-12-02T00:00:00Z",
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if len(got) != len(want) {
				t.Errorf("stored %v, want %v (PN05 dropped)", got, want)
			}
			if n := testutil.ToFloat64(r.l.m.dropped); n != 1 {
				t.Errorf("dropped %v, want 1", n)
			}
			ser := r.series(t, "hydro-1", "0012345678", "water_level", first.Add(-time.Minute))
			wantSer := []string{"23:00 1.1", "23:05 1.2", "23:10 -", "23:15 1.4", "00:00 12.345"}
			if len(ser) != len(wantSer) {
				t.Fatalf("water_level series %v, want %v", ser, wantSer)
			}
			for i := range ser {
				if ser[i] != wantSer[i] {
					t.Errorf("water_level[%d] = %q, want %q", i, ser[i], wantSer[i])
				}
			}
		})
	}
}

// TestSentAgain sends one timed report three times (a station that missed
// the confirmation resends): confirmed each time, stored and judged once;
// and once more to a restarted cloud on the same store.
func TestSentAgain(t *testing.T) {
	r := startRig(t, config.SL651{Central: 5, Confirm: config.ConfirmEOT,
		Stations: []config.SL651Station{{Address: "0011223344", Station: "hydro-1"}}})
	c := r.dial(t)
	frame := mustHex(t, "7E7E05001122334403E832002B020034170718110016F1F1001122334448F0F01707181100201900004026190000403923000104903812109903A421")
	for i := range 3 {
		c.send(frame)
		if cf := c.confirm(); cf.End != sl651.EOT {
			t.Fatalf("confirmation %d ends %#02x, want EOT", i, cf.End)
		}
	}
	if n := r.alerts.judged(); n != 4 {
		t.Errorf("early warnings judged %d readings, want 4", n)
	}
	if n := testutil.ToFloat64(r.l.m.readings); n != 4 {
		t.Errorf("readings counted %v, want 4", n)
	}
	if n := testutil.ToFloat64(r.l.m.duplicates); n != 2 {
		t.Errorf("duplicates %v, want 2", n)
	}
	if n := testutil.ToFloat64(r.l.m.frames.WithLabelValues("32")); n != 3 {
		t.Errorf("frames %v, want 3", n)
	}
	// The cloud restarts on the same store: the frame sent once more is
	// still recognised (the commit record is in the store).
	r.in.Settle() // a cloud stopping writes its commit records before it exits (Run)
	again := startRigOn(t, config.SL651{Central: 5, Stations: []config.SL651Station{{Address: "0011223344", Station: "hydro-1"}}}, r.store)
	c = again.dial(t)
	c.send(frame)
	c.confirm()
	if n := again.alerts.judged(); n != 0 {
		t.Errorf("after a restart the resent frame was judged again (%d readings)", n)
	}
	if n := testutil.ToFloat64(again.l.m.duplicates); n != 1 {
		t.Errorf("after a restart: duplicates %v, want 1", n)
	}
}

// TestMoreFollow: a message ended by ETB (more messages follow, table 10)
// is taken and confirmed with ACK; the last one, ended by ETX, with the
// configured ESC.
func TestMoreFollow(t *testing.T) {
	r := startRig(t, config.SL651{Central: 1, Stations: []config.SL651Station{{Address: "0012345678", Station: "hydro-1"}}})
	c := r.dial(t)
	obs := time.Date(2026, 12, 2, 8, 0, 0, 0, cst)
	for i, end := range []byte{sl651.ETB, sl651.ETB, sl651.ETX} {
		f := report(t, sl651.HEX, sl651.FnTimed, 1, st1, 0, uint16(i+1), obs.Add(time.Duration(i)*time.Hour+time.Second),
			obs.Add(time.Duration(i)*time.Hour), ev{0x39, float64(i)})
		f.End = end
		c.send(encode(t, f))
		want := byte(sl651.ACK)
		if end == sl651.ETX {
			want = sl651.ESC
		}
		if cf := c.confirm(); cf.End != want {
			t.Fatalf("message %d: confirmation ends %#02x, want %#02x", i, cf.End, want)
		}
	}
	if got := r.series(t, "hydro-1", "0012345678", "water_level", obs.Add(-time.Hour)); len(got) != 3 {
		t.Fatalf("stored %v, want 3 levels", got)
	}
}

// TestRelayedStations: a body carrying two listed stations (6.6.2.7, a
// relay) gives each its own readings; both are heard.
func TestRelayedStations(t *testing.T) {
	r := startRig(t, config.SL651{Central: 1, Stations: []config.SL651Station{
		{Address: "0012345678", Station: "relay"}, {Address: "0011223344", Station: "hydro-2"}}})
	obs := time.Date(2026, 12, 2, 8, 0, 0, 0, cst)
	z1, _ := sl651.NumberItem(0x39, 1.5, true, sl651.HEX)
	z2, _ := sl651.NumberItem(0x39, 2.5, true, sl651.HEX)
	body, err := sl651.Report{Serial: 1, SendTime: obs.Add(time.Second), Items: []sl651.Item{
		addrItem(sl651.HEX, st1), timeItem(sl651.HEX, obs), z1,
		addrItem(sl651.HEX, st2), timeItem(sl651.HEX, obs), z2}}.Body(sl651.HEX, cst)
	if err != nil {
		t.Fatal(err)
	}
	c := r.dial(t)
	c.send(encode(t, sl651.Frame{Center: 1, Station: st1, Function: sl651.FnTimed, Start: sl651.STX, Body: body, End: sl651.ETX}))
	c.confirm()
	for gw, want := range map[string]string{"relay": "0012345678/water_level", "hydro-2": "0011223344/water_level"} {
		got := r.latest(t, gw)
		if len(got) != 1 || got[want] == "" {
			t.Errorf("%s: stored %v, want %s", gw, got, want)
		}
		if s, ok := r.reg.Station(gw); !ok || s.State != registry.Online {
			t.Errorf("%s: registry %+v", gw, s)
		}
	}
}
