package hj212up

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/hj212test"
)

func modeEvent(dev, mode string, at time.Time) telemetry.Event {
	return telemetry.Event{Device: dev, Kind: telemetry.EventMode, Time: at, Clock: telemetry.ClockNTP,
		Attrs: map[string]string{"state": mode, "source": "register"}}
}

func quarantineEvent(dev, state string, at time.Time) telemetry.Event {
	return telemetry.Event{Device: dev, Kind: telemetry.EventQuarantine, Time: at, Clock: telemetry.ClockNTP,
		Attrs: map[string]string{"state": state, "bus": "rs485-1"}}
}

func mustEvents(t *testing.T, b *buffer.Buffer, es ...telemetry.Event) uint64 {
	t.Helper()
	seq, err := b.AppendEvents(es)
	if err != nil {
		t.Fatal(err)
	}
	return seq + uint64(len(es)) - 1
}

// overRange is the test's instrument range: a bad value above 100 is above
// the upper limit.
func overRange(r telemetry.Reading) bool { return r.Value > 100 }

// TestRealtimeFlags: the flag of each real-time item, from the device's
// mode (mode events), the reading's quality and range, and the link to
// the device (quarantine events): a quarantined device's factors go as
// Flag=B without a value in every frame sent while it is, and come back
// when it is released.
func TestRealtimeFlags(t *testing.T) {
	p := hj212test.Start(t, hj212test.ModeAck)
	b := newBuffer(t)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	wt := func(v float64, s int, q telemetry.Quality) telemetry.Reading {
		return reading("sonde-1", "water_temperature", v, "°C", at(s), q)
	}
	steps := []struct {
		event *telemetry.Event
		rs    []telemetry.Reading
		want  string // the frame's CP; "" no frame
	}{
		{nil, []telemetry.Reading{wt(18, 0, telemetry.Good), reading("met-1", "air_pressure", 101.3, "kPa", at(0), telemetry.Good)},
			"DataTime=20261121140000;w01010-Rtd=18.0,w01010-Flag=N;a01006-Rtd=101.300,a01006-Flag=N"},
		{ptr(modeEvent("sonde-1", telemetry.ModeMaintenance, at(5))), []telemetry.Reading{wt(18.1, 10, telemetry.Good)},
			"DataTime=20261121140010;w01010-Rtd=18.1,w01010-Flag=M"},
		{ptr(modeEvent("sonde-1", telemetry.ModeCalibration, at(15))), []telemetry.Reading{wt(18.2, 20, telemetry.Bad)},
			"DataTime=20261121140020;w01010-Rtd=18.2,w01010-Flag=C"}, // the mode before the quality
		{ptr(modeEvent("sonde-1", telemetry.ModeStopped, at(25))), []telemetry.Reading{wt(18.3, 30, telemetry.Good)},
			"DataTime=20261121140030;w01010-Rtd=18.3,w01010-Flag=F"},
		{ptr(modeEvent("sonde-1", "manual-someday", at(33))), []telemetry.Reading{wt(18.3, 34, telemetry.Good)},
			"DataTime=20261121140034;w01010-Rtd=18.3,w01010-Flag=F"}, // a mode it does not know changes nothing
		{ptr(modeEvent("sonde-1", telemetry.ModeNormal, at(35))), []telemetry.Reading{wt(18.4, 40, telemetry.Good)},
			"DataTime=20261121140040;w01010-Rtd=18.4,w01010-Flag=N"},
		{ptr(quarantineEvent("met-1", "quarantined", at(45))), []telemetry.Reading{wt(18.5, 50, telemetry.Good)},
			"DataTime=20261121140050;w01010-Rtd=18.5,w01010-Flag=N;a01006-Flag=B"},
		{nil, []telemetry.Reading{wt(150, 51, telemetry.Bad)},
			"DataTime=20261121140051;w01010-Rtd=150.0,w01010-Flag=T;a01006-Flag=B"},
		{ptr(quarantineEvent("met-1", "released", at(55))), []telemetry.Reading{wt(-5, 60, telemetry.Bad),
			reading("met-1", "air_pressure", 101.2, "kPa", at(60), telemetry.Good)},
			"DataTime=20261121140100;w01010-Rtd=-5.0,w01010-Flag=D;a01006-Rtd=101.200,a01006-Flag=N"},
		{nil, []telemetry.Reading{wt(18.6, 65, telemetry.Uncertain)},
			"DataTime=20261121140105;w01010-Rtd=18.6,w01010-Flag=D"},
	}
	var last uint64
	var want []string
	for _, s := range steps {
		if s.event != nil {
			mustEvents(t, b, *s.event)
		}
		last = mustAppend(t, b, s.rs...)
		want = append(want, s.want)
	}
	r := startAt(t, b, testConfig(p.Addr()), time.Now, func(o *Options) { o.OverRange = overRange })
	r.waitConfirmed(t, last)
	var got []string
	for _, f := range receive(t, p, len(want)) {
		got = append(got, f.CP.String())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("frames\n got %q\nwant %q", got, want)
	}
}

// TestModeSurvivesRestart: the devices' state at the cursor is kept with
// it, so after a restart the readings after the cursor are flagged by the
// mode and quarantine set before it — in real-time and aggregate data —
// not as if every device were normal. A note written by the first version
// (the period alone) still reads.
func TestModeSurvivesRestart(t *testing.T) {
	p := hj212test.Start(t, hj212test.ModeAck)
	opts, c, wt := minuteSetup(t, p.Addr())
	c.Factors["air_pressure"] = "a01006"
	// Before the restart the clock stands inside the 14:10 period, so that
	// period is still open when the uplink stops, whatever the machine's
	// speed: it is sent by the restarted uplink, from its saved state.
	var clock atomic.Int64
	clock.Store(t0.Add(10*time.Minute + 30*time.Second).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	b, err := buffer.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	r := startAt(t, b, c, now)
	mustAppend(t, b, wt(10, 0), reading("met-1", "air_pressure", 101.3, "kPa", t0, telemetry.Good))
	mustEvents(t, b, modeEvent("sonde-1", telemetry.ModeCalibration, t0.Add(time.Minute)),
		quarantineEvent("met-1", "quarantined", t0.Add(time.Minute)))
	mustAppend(t, b, wt(11, 2))
	closing := mustAppend(t, b, wt(12, 10)) // closes the 14:00 period; its own is open
	r.waitCursor(t, "plat", closing)
	r.waitCursor(t, "plat.minute", closing-1)
	r.stop()
	b.Close()
	drained(p)

	clock.Store(t0.Add(30 * time.Minute).UnixNano())
	b, err = buffer.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	r = startAt(t, b, c, now)
	last := mustAppend(t, b, wt(13, 20))
	r.waitCursor(t, "plat", last)
	r.waitCursor(t, "plat.minute", last-1)
	// The restarted poller does not release met-1 (it starts afresh): its
	// first reading says the link works.
	last = mustAppend(t, b, reading("met-1", "air_pressure", 101.2, "kPa", t0.Add(21*time.Minute), telemetry.Good))
	r.waitCursor(t, "plat", last)
	var got []string
	for _, f := range drained(p) {
		got = append(got, f.CN+" "+f.CP.String())
	}
	slices.Sort(got)
	want := []string{
		"2011 DataTime=20261121142000;w01010-Rtd=13.0,w01010-Flag=C;a01006-Flag=B",
		"2011 DataTime=20261121142100;a01006-Rtd=101.200,a01006-Flag=N",
		// the period 14:10 (one reading, at 14:10, after the restart's cursor)
		"2051 DataTime=20261121141000;a01006-Flag=B;w01010-Flag=C",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after the restart\n got %q\nwant %q", got, want)
	}
}

func TestParseNote(t *testing.T) {
	st := newDevices()
	st.event(modeEvent("cod-1", telemetry.ModeMaintenance, t0))
	st.event(quarantineEvent("flow-1", "quarantined", t0.Add(1500*time.Millisecond)))
	st.learn("flow-1", "w00000")
	st.learn("cod-1", "w01018")
	st.learn("cod-1", "w01001")
	n := note{period: t0, state: st}
	back, bad := parseNote(n.marshal())
	if len(bad) != 0 || !back.period.Equal(t0) || string(back.state.marshal()) != string(st.marshal()) {
		t.Fatalf("round trip: bad %q, period %v, state\n%s\nwant\n%s", bad, back.period, back.state.marshal(), st.marshal())
	}
	legacy, bad := parseNote([]byte("2026-11-21T06:00:00Z\n"))
	if len(bad) != 0 || !legacy.period.Equal(t0) || len(legacy.state.marshal()) != 0 {
		t.Fatalf("the first version's note: %v %v", legacy, bad)
	}
	junk, bad := parseNote([]byte("mode cod-1 dancing\ncodes flow-1 w0000x\ndown flow-1 yesterday\nmode a b c\nhello\n"))
	if len(bad) != 5 || len(junk.state.marshal()) != 0 {
		t.Fatalf("junk: bad %q, state %q", bad, junk.state.marshal())
	}
}

// FuzzParseNote: a note read back never panics, and what it yields writes
// back to a note that reads the same.
func FuzzParseNote(f *testing.F) {
	f.Add([]byte("2026-11-21T06:00:00Z\nmode cod-1 maintenance\ndown flow-1 2026-11-21T06:00:01.5Z\ncodes flow-1 w00000,w01018\n"))
	f.Add([]byte("mode a normal\n\n   \ncodes x a00000"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, _ := parseNote(data)
		again, bad := parseNote(n.marshal())
		if len(bad) != 0 || string(again.marshal()) != string(n.marshal()) {
			t.Fatalf("%q: written %q, read back %q (bad %q)", data, n.marshal(), again.marshal(), bad)
		}
	})
}

// TestAggregateFlagsAndCou: minute, hour and day aggregates of a waste
// water station: w00000 (flow, L/s) and w01018 (COD, mg/L). Cou is the
// volume (m³, appendix D.1.1) and the COD emitted (kg, D.1.2): with the
// flow of C.16–C.18 (17.5 L/s) the volume of 10 minutes, an hour and a day
// is C.16's 10.5, C.17's 63.0, C.18's 1512.0 m³. Readings not normal
// (maintenance) take no part in Avg, Min, Max or Cou, and flag the period;
// a gap longer than cou_max_gap counts cou_max_gap.
func TestAggregateFlagsAndCou(t *testing.T) {
	tests := []struct {
		name string
		// minute → flow, cod (0: none); a minute whose flow is negative is
		// read during maintenance of the flow meter
		flow, cod func(m int) float64
		want      []string
	}{
		{"steady", func(int) float64 { return 17.5 }, func(int) float64 { return 40.1 }, []string{
			"2051 DataTime=20261121140000;w00000-Cou=10.5,w00000-Avg=17.50,w00000-Min=17.50,w00000-Max=17.50,w00000-Flag=N;" +
				"w01018-Cou=0.42105,w01018-Avg=40.1,w01018-Min=40.1,w01018-Max=40.1,w01018-Flag=N",
		}},
		{"maintenance and a gap", func(m int) float64 {
			switch {
			case m == 3:
				return -1 // maintenance: 14:03–14:04 not counted
			case m >= 5 && m < 9:
				return 0 // no reading 14:05–14:09; the 14:04 one holds 2 min
			}
			return 10
		}, func(m int) float64 { return 50 }, []string{
			// 14:00–14:03 3 min, 14:04–14:06 2 min (the gap cut at 2 min),
			// 14:09–14:10 1 min: 6 min of 10 L/s = 3.6 m³; COD 3.6 × 50 g
			"2051 DataTime=20261121140000;w00000-Cou=3.6,w00000-Avg=10.00,w00000-Min=10.00,w00000-Max=10.00,w00000-Flag=M;" +
				"w01018-Cou=0.18,w01018-Avg=50.0,w01018-Min=50.0,w01018-Max=50.0,w01018-Flag=N",
		}},
		{"no flow", func(int) float64 { return 0 }, func(int) float64 { return 40 }, []string{
			"2051 DataTime=20261121140000;w01018-Avg=40.0,w01018-Min=40.0,w01018-Max=40.0,w01018-Flag=N",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := hj212test.Start(t, hj212test.ModeAck)
			b := newBuffer(t)
			c := testConfig(p.Addr())
			c.Factors = map[string]string{"wastewater_flow": "w00000", "cod": "w01018"}
			c.Realtime, c.Minute = ptr(false), true
			c.CouMaxGap = 2 * time.Minute
			r := startAt(t, b, c, func() time.Time { return t0.Add(20 * time.Minute) })
			var last uint64
			for m := 0; m < 10; m++ {
				at := t0.Add(time.Duration(m) * time.Minute)
				if f := tt.flow(m); f < 0 {
					mustEvents(t, b, modeEvent("flow-1", telemetry.ModeMaintenance, at))
					mustAppend(t, b, reading("flow-1", "wastewater_flow", 99, "L/s", at, telemetry.Good))
					mustEvents(t, b, modeEvent("flow-1", telemetry.ModeNormal, at.Add(30*time.Second)))
				} else if f > 0 {
					mustAppend(t, b, reading("flow-1", "wastewater_flow", f, "L/s", at, telemetry.Good))
				}
				if v := tt.cod(m); v > 0 {
					last = mustAppend(t, b, reading("cod-1", "cod", v, "mg/L", at, telemetry.Good))
				}
			}
			r.waitCursor(t, "plat.minute", last)
			var got []string
			for _, f := range drained(p) {
				got = append(got, f.CN+" "+f.CP.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("frames\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestCouOfThePrintedExamples: the volumes of C.16 (10 minutes), C.17 (an
// hour) and C.18 (a day) at their average flow, 17.5 L/s, sampled every 5 s
// (D.1.1's time slice), and the units of the mass of each concentration.
func TestCouOfThePrintedExamples(t *testing.T) {
	rule := newCouRule(nil, time.Minute)
	for _, tt := range []struct {
		length time.Duration
		want   string
	}{{10 * time.Minute, "10.5"}, {time.Hour, "63.0"}, {24 * time.Hour, "1512.0"}} {
		a := &aggregate{start: t0, end: t0.Add(tt.length), cou: rule}
		f := factor{code: "w00000", unit: "L/s", decimals: 2, scale: 1}
		for at := t0; at.Before(a.end); at = at.Add(5 * time.Second) {
			a.add(f, 17.5, telemetry.Reading{Time: at}, hj212.DataNormal)
		}
		if got := formatCou(rule.compute(a)["w00000"]); got != tt.want {
			t.Errorf("%v: Cou %s, want %s", tt.length, got, tt.want)
		}
	}
	for _, tt := range []struct {
		conc, unit string
		want       float64
	}{
		{"mg/L", "kg", 1e-3}, {"ug/L", "g", 1e-3}, {"µg/L", "g", 1e-3}, {"ng/L", "mg", 1e-3},
		{"mg/m3", "kg", 1e-6}, {"mg/m³", "kg", 1e-6}, {"ng/m3", "g", 1e-9},
	} {
		got, ok := massPerVolume(tt.conc, tt.unit)
		if !ok || !near(got, tt.want) {
			t.Errorf("%s → %s: %v %v, want %v", tt.conc, tt.unit, got, ok, tt.want)
		}
	}
	if _, ok := massPerVolume("%", "kg"); ok {
		t.Error("a percentage is not a mass per volume")
	}
	if u := couUnit("w20117", "ug/L"); u != "g" {
		t.Errorf("Cou unit of µg/L: %s, want g (the tables' pattern)", u)
	}
}

func TestFormatCou(t *testing.T) {
	for v, want := range map[float64]string{0: "0.0", 10.5: "10.5", 63: "63.0", 1512: "1512.0", 0.0421050: "0.042105",
		0.42105: "0.42105", 123456.7: "123456.7", 1e-9: "0.000000001", 2.0000004: "2.0"} {
		if got := formatCou(v); got != want {
			t.Errorf("formatCou(%v) = %s, want %s", v, got, want)
		}
	}
}

func near(a, b float64) bool { return a == b || (a-b)/b < 1e-12 && (b-a)/b < 1e-12 }

// TestHistoryFlags: a history request answers with the flags of the
// devices' modes as the buffer records them.
func TestHistoryFlags(t *testing.T) {
	p := hj212test.Start(t, hj212test.ModeAck)
	b, err := buffer.Open(buffer.Options{Dir: t.TempDir(), Fsync: buffer.FsyncOff, RetainBytes: 1 << 20,
		Consumers: []string{"plat"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c := testConfig(p.Addr())
	c.Factors = map[string]string{"water_temperature": "w01010"}
	mustEvents(t, b, modeEvent("sonde-1", telemetry.ModeMaintenance, t0))
	mustAppend(t, b, reading("sonde-1", "water_temperature", 10, "°C", t0, telemetry.Good))
	mustEvents(t, b, modeEvent("sonde-1", telemetry.ModeNormal, t0.Add(2*time.Minute)))
	last := mustAppend(t, b, reading("sonde-1", "water_temperature", 11, "°C", t0.Add(3*time.Minute), telemetry.Good))
	b.Trim(last)
	r := startAt(t, b, c, func() time.Time { return t0.Add(time.Hour) }, func(o *Options) { o.History = true })
	r.waitConfirmed(t, last)
	var got []string
	for _, f := range receive(t, p, 2) {
		got = append(got, f.CN+" "+f.CP.String())
	}
	err = p.Send(hj212.Packet{QN: "20261121150000001", ST: "21", CN: "2051", PW: "123456", MN: "010000A8900016F000169DC0",
		Flag: 5, CP: hj212.CP{{{Name: "BeginTime", Value: "20261121140000"}}, {{Name: "EndTime", Value: "20261121140000"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range receive(t, p, 3) {
		got = append(got, f.CN+" "+f.CP.String())
	}
	want := []string{
		"2011 DataTime=20261121140000;w01010-Rtd=10.0,w01010-Flag=M",
		"2011 DataTime=20261121140300;w01010-Rtd=11.0,w01010-Flag=N",
		"9011 QnRtn=1",
		// Avg, Min, Max of the normal reading; the period M (water: one
		// abnormal reading makes it abnormal)
		"2051 DataTime=20261121140000;w01010-Avg=11.0,w01010-Min=11.0,w01010-Max=11.0,w01010-Flag=M",
		"9012 ExeRtn=1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}
