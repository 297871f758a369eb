package hj212up

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/hj212test"
)

// t0 is 14:00:00 in Beijing.
var t0 = time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)

const waitLimit = 20 * time.Second // bound on every wait; never reached when things work

func ptr[T any](v T) *T { return &v }

func newBuffer(t *testing.T) *buffer.Buffer {
	t.Helper()
	b, err := buffer.Open(buffer.Options{Dir: t.TempDir(), Fsync: buffer.FsyncOff,
		Consumers: []string{"plat", "plat.minute", "plat.hour", "plat.day"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func testConfig(addr string) config.HJ212Uplink {
	return config.HJ212Uplink{Name: "plat", Address: addr, MN: "010000A8900016F000169DC0", PW: "123456", ST: "21",
		Edition: 2017, Factors: map[string]string{"water_temperature": "w01010", "water_ph": "w01001",
			"dissolved_oxygen": "w01009", "air_pressure": "a01006", "ammonia_nitrogen": "w21003"},
		Ack: ptr(true), AckTimeout: 5 * time.Second, Retries: ptr(3), ConnectTimeout: 5 * time.Second,
		ReconnectMax: 50 * time.Millisecond, MinuteInterval: 10 * time.Minute, AggregateDelay: time.Minute}
}

// running is an uplink started by a test, with a channel of its
// confirmations.
type running struct {
	u         *Uplink
	m         *Metrics
	confirmed chan confirmation
	cursors   map[string]uint64 // what waitCursor has seen of confirmed
	stop      func()            // stops the uplink (again at the test's end: once)
}

type confirmation struct {
	consumer string
	through  uint64
}

func start(t *testing.T, b *buffer.Buffer, c config.HJ212Uplink) *running {
	return startAt(t, b, c, time.Now)
}

// startAt starts an uplink whose clock (for QNs and periods falling due)
// is now.
func startAt(t *testing.T, b *buffer.Buffer, c config.HJ212Uplink, now func() time.Time, mods ...func(*Options)) *running {
	t.Helper()
	r := &running{m: NewMetrics(prometheus.NewRegistry()), confirmed: make(chan confirmation, 10000),
		cursors: map[string]uint64{}}
	cons := map[string]*buffer.Consumer{}
	for _, k := range c.Kinds() {
		cons[k] = b.Consumer(c.Consumer(k))
	}
	o := Options{Config: c, Buffer: b, Consumers: cons, Log: slog.New(slog.DiscardHandler), Metrics: r.m,
		OnConfirm: func(consumer string, through uint64) { r.confirmed <- confirmation{consumer, through} },
		retryBase: 10 * time.Millisecond, now: now}
	for _, m := range mods {
		m(&o)
	}
	r.u = New(o)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.u.Run(ctx) }()
	r.stop = sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(r.stop)
	return r
}

// waitConfirmed waits until the real-time cursor reaches seq.
func (r *running) waitConfirmed(t *testing.T, seq uint64) { r.waitCursor(t, "plat", seq) }

// waitCursor waits until the cursor of consumer reaches seq.
func (r *running) waitCursor(t *testing.T, consumer string, seq uint64) {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	for r.cursors[consumer] < seq {
		select {
		case got := <-r.confirmed:
			r.cursors[got.consumer] = max(r.cursors[got.consumer], got.through)
		case <-limit.C:
			t.Fatalf("cursor %s not at %d within %v", consumer, seq, waitLimit)
		}
	}
}

// receive takes n frames from the platform.
func receive(t *testing.T, p *hj212test.Platform, n int) []hj212.Packet {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	var out []hj212.Packet
	for len(out) < n {
		select {
		case f := <-p.Frames:
			out = append(out, f)
		case <-limit.C:
			t.Fatalf("%d of %d frames within %v", len(out), n, waitLimit)
		}
	}
	return out
}

// drained returns the frames the platform has taken and not yet handed out.
func drained(p *hj212test.Platform) []hj212.Packet {
	var out []hj212.Packet
	for {
		select {
		case f := <-p.Frames:
			out = append(out, f)
		default:
			return out
		}
	}
}

func reading(dev, metric string, v float64, unit string, at time.Time, q telemetry.Quality) telemetry.Reading {
	return telemetry.Reading{Device: dev, Metric: metric, Value: v, Unit: unit, Time: at, Quality: q, Clock: telemetry.ClockNTP}
}

func mustAppend(t *testing.T, b *buffer.Buffer, rs ...telemetry.Reading) uint64 {
	t.Helper()
	seq, err := b.Append(rs)
	if err != nil {
		t.Fatal(err)
	}
	return seq + uint64(len(rs)) - 1
}

// TestRealtimeFrames: readings become 2011 frames, one per second, with
// factor codes, the table's decimals and units (Pa converted to kPa),
// flags from quality; events and unmapped readings are skipped, a reading
// in a unit the factor cannot take is not sent and counted. With ack on,
// Flag is 5 and each frame waits for its 9014; with ack off, Flag is 4 and
// a silent platform is enough.
func TestRealtimeFrames(t *testing.T) {
	tests := []struct {
		name     string
		ack      bool
		mode     int32
		wantFlag hj212.Flag
	}{
		{"ack", true, hj212test.ModeAck, 5},
		{"no ack", false, hj212test.ModeSilent, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := hj212test.Start(t, tt.mode)
			b := newBuffer(t)
			mustAppend(t, b, reading("sonde-1", "water_temperature", 18.26, "°C", t0, telemetry.Good),
				reading("sonde-1", "water_ph", 7.314, "", t0, telemetry.Good),
				reading("sonde-1", "dissolved_oxygen", 8.1, "mg/L", t0, telemetry.Uncertain))
			b.AppendEvents([]telemetry.Event{{Device: "met-1", Kind: "connection", Time: t0, Clock: telemetry.ClockNTP,
				Attrs: map[string]string{"state": "restored"}}})
			mustAppend(t, b, reading("met-1", "air_pressure", 101325, "Pa", t0.Add(400*time.Millisecond), telemetry.Good))
			mustAppend(t, b, reading("sonde-1", "water_temperature", 18.5, "°C", t0.Add(30*time.Second), telemetry.Good),
				reading("sonde-1", "ammonia_nitrogen", 0.5, "ppm", t0.Add(30*time.Second), telemetry.Good),
				reading("sonde-1", "water_ph", math.NaN(), "", t0.Add(30*time.Second), telemetry.Bad))
			last := mustAppend(t, b, reading("soil-1", "soil_moisture", 30, "%", t0.Add(60*time.Second), telemetry.Good))

			c := testConfig(p.Addr())
			c.Ack = ptr(tt.ack)
			r := start(t, b, c)
			r.waitConfirmed(t, last)
			frames := receive(t, p, 2)
			if extra := drained(p); len(extra) != 0 {
				t.Fatalf("frames beyond the two: %+v", extra)
			}
			want := []string{
				"DataTime=20261121140000;w01010-Rtd=18.3,w01010-Flag=N;w01001-Rtd=7.31,w01001-Flag=N;" +
					"w01009-Rtd=8.1,w01009-Flag=D;a01006-Rtd=101.325,a01006-Flag=N",
				"DataTime=20261121140030;w01010-Rtd=18.5,w01010-Flag=N;w01001-Flag=D",
			}
			for i, f := range frames {
				if f.ST != "21" || f.CN != "2011" || f.PW != "123456" || f.MN != "010000A8900016F000169DC0" ||
					f.NoFlag || f.Flag != tt.wantFlag || f.PNUM != 0 {
					t.Errorf("frame %d header %+v", i, f)
				}
				if got := f.CP.String(); got != want[i] {
					t.Errorf("frame %d CP\n got %s\nwant %s", i, got, want[i])
				}
			}
			if frames[0].QN >= frames[1].QN {
				t.Errorf("QNs %s, %s not increasing", frames[0].QN, frames[1].QN)
			}
			if got := testutil.ToFloat64(r.m.skipped.WithLabelValues("plat", SkipUnit)); got != 1 {
				t.Errorf("skipped for unit %v, want 1", got)
			}
			if got := testutil.ToFloat64(r.m.readings.WithLabelValues("plat")); got != 6 {
				t.Errorf("readings sent %v, want 6", got)
			}
		})
	}
}

// TestPlatformDownThenBack: a platform that drops every connection while
// readings pile up, then comes back: every reading arrives, none twice
// (counted by DataTime and QN), and the cursor reaches the end.
func TestPlatformDownThenBack(t *testing.T) {
	p := hj212test.Start(t, hj212test.ModeDown)
	b := newBuffer(t)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	for i := range 20 {
		mustAppend(t, b, reading("sonde-1", "water_temperature", float64(i), "°C", at(i), telemetry.Good))
	}
	r := start(t, b, testConfig(p.Addr()))
	// Dropped twice: the uplink dialled again after a lost link.
	limit := time.NewTimer(waitLimit)
	for range 2 {
		select {
		case <-p.Conns:
		case <-limit.C:
			t.Fatal("the uplink did not dial twice")
		}
	}
	limit.Stop()
	for i := 20; i < 40; i++ { // acquired during the outage
		mustAppend(t, b, reading("sonde-1", "water_temperature", float64(i), "°C", at(i), telemetry.Good))
	}
	if c := b.Consumer("plat").Confirmed(); c != 0 {
		t.Fatalf("cursor %d while the platform is down", c)
	}
	p.SetMode(hj212test.ModeAck)
	r.waitConfirmed(t, 40)
	frames := drained(p)
	byTime, byQN := map[string]int{}, map[string]int{}
	for _, f := range frames {
		dt, _ := f.CP.Get("DataTime")
		byTime[dt]++
		byQN[f.QN]++
	}
	for i := range 40 {
		dt := hj212.FormatTime(at(i), hj212.Beijing)
		if byTime[dt] != 1 {
			t.Errorf("DataTime %s arrived %d times", dt, byTime[dt])
		}
	}
	if len(frames) != 40 || len(byQN) != 40 {
		t.Fatalf("%d frames, %d QNs; want 40 of each", len(frames), len(byQN))
	}
}

// TestPlatformNeverAcks: a platform that takes frames and never answers:
// each frame is sent 1 + retries times, then the link is given up and
// dialled again, and the same frame is sent again; the cursor never moves,
// while the MQTT side (the primary) reads and trims everything as usual.
func TestPlatformNeverAcks(t *testing.T) {
	p := hj212test.Start(t, hj212test.ModeSilent)
	b := newBuffer(t)
	var last uint64
	for i := range 5 {
		last = mustAppend(t, b, reading("sonde-1", "water_temperature", float64(i), "°C", t0.Add(time.Duration(i)*time.Minute), telemetry.Good))
	}
	c := testConfig(p.Addr())
	c.AckTimeout, c.Retries = 50*time.Millisecond, ptr(1)
	r := start(t, b, c)
	frames := receive(t, p, 4) // two sends on each of two connections
	qns := map[string]int{}
	for _, f := range frames {
		if dt, _ := f.CP.Get("DataTime"); dt != "20261121140000" {
			t.Fatalf("frame for %s sent before the first was confirmed", dt)
		}
		qns[f.QN]++
	}
	if len(qns) != 2 || qns[frames[0].QN] != 2 {
		t.Fatalf("QNs %v: want one per connection, each sent twice", qns)
	}
	// The MQTT uplink is unaffected: it reads everything and trims it.
	ch, err := b.Read(1, 100)
	if err != nil || ch.Len() != 5 {
		t.Fatalf("primary reads %d items, err %v", ch.Len(), err)
	}
	if err := b.Trim(last); err != nil {
		t.Fatal(err)
	}
	s := b.Stats()
	if b.Acked() != last || s.Readings != 0 || s.Held != 5 {
		t.Fatalf("acked %d, stats %+v: want the cloud done and 5 held for the platform", b.Acked(), s)
	}
	if got := b.Consumer("plat").Confirmed(); got != 0 {
		t.Fatalf("platform cursor %d, want 0", got)
	}
	if n := testutil.ToFloat64(r.m.ackTimeouts.WithLabelValues("plat")); n < 2 {
		t.Fatalf("ack timeouts %v", n)
	}
}

// TestSplitLongFrame: a second with more factors than one packet holds
// goes as numbered packets (Flag 7, PNUM/PNO), DataTime in each, each with
// its own QN and answer; together they hold every factor.
func TestSplitLongFrame(t *testing.T) {
	p := hj212test.Start(t, hj212test.ModeAck)
	b := newBuffer(t)
	c := testConfig(p.Addr())
	c.Factors = map[string]string{}
	var rs []telemetry.Reading
	for i := range 80 {
		m := fmt.Sprintf("m%02d", i)
		c.Factors[m] = fmt.Sprintf("e%05d", i)
		rs = append(rs, reading("dev", m, 1000+float64(i)/1000, "mg/L", t0, telemetry.Good))
	}
	last := mustAppend(t, b, rs...)
	r := start(t, b, c)
	r.waitConfirmed(t, last)
	parts := drained(p)
	if len(parts) < 3 {
		t.Fatalf("%d packets; want the frame split", len(parts))
	}
	qns := map[string]bool{}
	for i, q := range parts {
		dt, _ := q.CP.Get("DataTime")
		if q.Flag != 7 || q.PNUM != len(parts) || q.PNO != i+1 || dt != "20261121140000" || qns[q.QN] {
			t.Fatalf("part %d: %+v", i, q)
		}
		qns[q.QN] = true
	}
	whole, err := hj212.Join(parts, 1)
	if err != nil {
		t.Fatal(err)
	}
	fs := whole.CP.Factors()
	if len(fs) != 80 || fs["e00079"]["Rtd"] != "1000.079" || fs["e00000"]["Flag"] != "N" {
		t.Fatalf("joined %d factors: %v", len(fs), fs["e00079"])
	}
}

func TestMap(t *testing.T) {
	m := NewMapper(map[string]string{"water_temperature": "w01010", "sonde-2/water_temperature": "w01099",
		"air_pressure": "a01006", "pm2_5": "a34004", "turbidity": "w01003", "conductivity": "w01014"},
		map[string]string{"a34004": "ug/m3"})
	tests := []struct {
		r        telemetry.Reading
		code     string
		v        float64
		mapped   bool
		skip     string
		decimals int
	}{
		{reading("sonde-1", "water_temperature", 12.5, "°C", t0, 0), "w01010", 12.5, true, "", 1},
		{reading("sonde-1", "water_temperature", 12.5, "℃", t0, 0), "w01010", 12.5, true, "", 1},
		{reading("sonde-2", "water_temperature", 12.5, "°C", t0, 0), "w01099", 12.5, true, "", -1},
		{reading("sonde-1", "water_temperature", 12.5, "K", t0, 0), "w01010", 0, true, SkipUnit, 1},
		{reading("met", "air_pressure", 1013.2, "hPa", t0, 0), "a01006", 101.32, true, "", 3},
		{reading("air", "pm2_5", 35, "µg/m³", t0, 0), "a34004", 35, true, "", 3},
		{reading("sonde-1", "turbidity", 5, "NTU", t0, 0), "w01003", 5, true, "", -1},
		{reading("sonde-1", "conductivity", 1.2, "mS/cm", t0, 0), "w01014", 1200, true, "", 1},
		{reading("soil", "soil_moisture", 30, "%", t0, 0), "", 0, false, "", 0},
		{telemetry.Reading{Device: "sonde-1", Metric: "water_temperature", Value: 3, Unit: "°C", Time: t0,
			Clock: telemetry.ClockUnsynced}, "w01010", 0, true, SkipUnsynced, 1},
	}
	for _, tt := range tests {
		f, v, mapped, skip := m.Map(tt.r)
		if mapped != tt.mapped || skip != tt.skip || f.code != tt.code || math.Abs(v-tt.v) > 1e-9 ||
			(mapped && f.decimals != tt.decimals) {
			t.Errorf("%s/%s %v %s: %+v %v %v %q", tt.r.Device, tt.r.Metric, tt.r.Value, tt.r.Unit, f, v, mapped, skip)
		}
	}
}

// TestFlag: a reading's flag from its device's mode, then its quality and
// range.
func TestFlag(t *testing.T) {
	st := newDevices()
	st.event(modeEvent("m-1", telemetry.ModeMaintenance, t0))
	st.event(modeEvent("c-1", telemetry.ModeCalibration, t0))
	st.event(modeEvent("f-1", telemetry.ModeStopped, t0))
	tests := []struct {
		dev  string
		v    float64
		q    telemetry.Quality
		want string
	}{
		{"d-1", 50, telemetry.Good, "N"}, {"d-1", 50, telemetry.Uncertain, "D"}, {"d-1", 50, telemetry.Bad, "D"},
		{"d-1", 150, telemetry.Bad, "T"}, {"d-1", 150, telemetry.Uncertain, "D"}, {"d-1", math.NaN(), telemetry.Bad, "D"},
		{"m-1", 50, telemetry.Good, "M"}, {"m-1", 150, telemetry.Bad, "M"},
		{"c-1", 50, telemetry.Good, "C"}, {"f-1", 50, telemetry.Uncertain, "F"},
	}
	for _, tt := range tests {
		r := reading(tt.dev, "x", tt.v, "", t0, tt.q)
		if got := st.flag(r, overRange); got != tt.want {
			t.Errorf("%s %v %v: %s, want %s", tt.dev, tt.v, tt.q, got, tt.want)
		}
		if got := st.flag(r, nil); tt.want == "T" && got != "D" {
			t.Errorf("without a range: %s, want D", got)
		}
	}
}

// TestAggregates: minute (10 min) and hour aggregates on event time: a
// period is sent once a reading of a later period arrives, or once
// aggregate_delay has passed after its end; Avg, Min, Max of the normal
// readings with the table's decimals; a water factor is D if one reading
// was abnormal, an air factor N when 75 % were normal; DataTime is the
// period's start; a reading of a period already sent is late, counted and
// not sent.
func TestAggregates(t *testing.T) {
	p := hj212test.Start(t, hj212test.ModeAck)
	b := newBuffer(t)
	c := testConfig(p.Addr())
	c.Factors = map[string]string{"water_temperature": "w01010", "air_temperature": "a01001"}
	c.Realtime, c.Minute, c.Hour = ptr(false), true, true
	var clock sync.Mutex
	// 14:10:30: the 14:00 period (due at 14:11) closes only with the
	// reading of 14:10, not before all its readings are in.
	now := t0.Add(10*time.Minute + 30*time.Second)
	r := startAt(t, b, c, func() time.Time { clock.Lock(); defer clock.Unlock(); return now })
	at := func(m, s int) time.Time { return t0.Add(time.Duration(m)*time.Minute + time.Duration(s)*time.Second) }
	wt := func(v float64, m, s int, q telemetry.Quality) telemetry.Reading {
		return reading("sonde-1", "water_temperature", v, "°C", at(m, s), q)
	}
	air := func(v float64, m int, q telemetry.Quality) telemetry.Reading {
		return reading("met-1", "air_temperature", v, "°C", at(m, 0), q)
	}
	mustAppend(t, b, wt(10, 0, 0, telemetry.Good), air(1, 0, telemetry.Good))
	mustAppend(t, b, air(2, 3, telemetry.Good))
	mustAppend(t, b, wt(12, 5, 0, telemetry.Good), air(3, 6, telemetry.Good))
	mustAppend(t, b, air(100, 8, telemetry.Uncertain))
	last14 := mustAppend(t, b, wt(20, 9, 59, telemetry.Bad))
	mustAppend(t, b, wt(30, 10, 0, telemetry.Good)) // closes the minute period 14:00
	r.waitCursor(t, "plat.minute", last14)

	mustAppend(t, b, wt(40, 60, 0, telemetry.Good)) // 15:00: closes 14:10 and the hour 14:00
	mustAppend(t, b, wt(99, 30, 0, telemetry.Good)) // late for both
	r.waitCursor(t, "plat.hour", last14+1)

	clock.Lock()
	now = at(122, 0) // 16:02: the 15:00 periods are due
	clock.Unlock()
	end := mustAppend(t, b, reading("soil-1", "soil_moisture", 30, "%", at(122, 0), telemetry.Good)) // wakes the uplink
	r.waitCursor(t, "plat.minute", end)
	r.waitCursor(t, "plat.hour", end)

	want := []string{ // by kind, each in the order sent
		"2051 DataTime=20261121140000;a01001-Avg=2.0,a01001-Min=1.0,a01001-Max=3.0,a01001-Flag=N;" +
			"w01010-Avg=11.0,w01010-Min=10.0,w01010-Max=12.0,w01010-Flag=D",
		"2051 DataTime=20261121141000;w01010-Avg=30.0,w01010-Min=30.0,w01010-Max=30.0,w01010-Flag=N",
		"2051 DataTime=20261121150000;w01010-Avg=40.0,w01010-Min=40.0,w01010-Max=40.0,w01010-Flag=N",
		"2061 DataTime=20261121140000;a01001-Avg=2.0,a01001-Min=1.0,a01001-Max=3.0,a01001-Flag=N;" +
			"w01010-Avg=17.3,w01010-Min=10.0,w01010-Max=30.0,w01010-Flag=D",
		"2061 DataTime=20261121150000;w01010-Avg=40.0,w01010-Min=40.0,w01010-Max=40.0,w01010-Flag=N",
	}
	// The kinds are independent: compare each kind's frames, in order.
	var got []string
	for _, f := range drained(p) {
		if f.Flag != 5 {
			t.Errorf("frame %+v: Flag %d", f, f.Flag)
		}
		got = append(got, f.CN+" "+f.CP.String())
	}
	slices.SortStableFunc(got, func(a, b string) int { return strings.Compare(a[:4], b[:4]) })
	if !slices.Equal(got, want) {
		t.Fatalf("frames\n got %q\nwant %q", got, want)
	}
	if n := testutil.ToFloat64(r.m.skipped.WithLabelValues("plat", SkipLate)); n != 2 {
		t.Errorf("late readings %v, want 2 (one per kind)", n)
	}
}

func TestAggregateFlag(t *testing.T) {
	tests := []struct {
		code  string
		flags map[string]int
		want  string
	}{
		{"w01018", map[string]int{"N": 6}, "N"},
		{"w01018", map[string]int{"N": 5, "D": 1}, "D"},
		// water: one abnormal reading makes the period abnormal; which
		// letter: the most frequent abnormal one, ties by FMCBTDS
		{"w01018", map[string]int{"N": 50, "C": 10}, "C"},
		{"w01018", map[string]int{"N": 1, "M": 3, "D": 5}, "D"},
		{"w01018", map[string]int{"M": 3, "D": 3}, "M"},
		{"w01018", map[string]int{"N": 59, "B": 1}, "B"},
		{"w01018", map[string]int{"N": 59, "T": 1}, "T"},
		{"w00000", map[string]int{"F": 6}, "F"},
		// air: 75 % normal is normal; below, one kind of abnormal gives its
		// letter, mixed ones D as the note says
		{"a21026", map[string]int{"N": 3, "D": 1}, "N"},
		{"a21026", map[string]int{"N": 2, "D": 2}, "D"},
		{"a21026", map[string]int{"N": 45, "M": 15}, "N"},
		{"a21026", map[string]int{"N": 44, "D": 16}, "D"},
		{"a21026", map[string]int{"N": 10, "C": 50}, "C"},
		{"a21026", map[string]int{"N": 10, "C": 40, "D": 10}, "D"},
		{"a21026", map[string]int{"B": 60}, "B"},
		// neither water nor air: the water rule
		{"x01001", map[string]int{"N": 99, "M": 1}, "M"},
	}
	for _, tt := range tests {
		n := 0
		for _, c := range tt.flags {
			n += c
		}
		if got := aggregateFlag(tt.code, n, tt.flags); got != tt.want {
			t.Errorf("%s %v: %s, want %s", tt.code, tt.flags, got, tt.want)
		}
	}
}

func TestPeriodStart(t *testing.T) {
	at := time.Date(2026, 11, 21, 23, 47, 12, 0, hj212.Beijing)
	tests := []struct {
		kind   string
		minute time.Duration
		want   string
	}{
		{config.KindMinute, 10 * time.Minute, "20261121234000"},
		{config.KindMinute, 15 * time.Minute, "20261121234500"},
		{config.KindMinute, time.Minute, "20261121234700"},
		{config.KindHour, 0, "20261121230000"},
		{config.KindDay, 0, "20261121000000"},
	}
	for _, tt := range tests {
		// The same instant in UTC: periods are Beijing's.
		if got := hj212.FormatTime(periodStart(tt.kind, at.UTC(), tt.minute, hj212.Beijing), hj212.Beijing); got != tt.want {
			t.Errorf("%s %v: %s, want %s", tt.kind, tt.minute, got, tt.want)
		}
	}
}

// TestRequests: the platform's requests are answered on the flow of
// C.1–C.4 (9011 QnRtn, any upload, 9012 ExeRtn; 9013 for a notice), all
// with the request's QN: the time is given (1011) but never taken (1012);
// OverTime and ReCount are taken (1000); a wrong PW or MN and requests not
// built (history) are refused; 2012 stops real-time frames (the cursor
// moves on) and 2011 starts them again.
func TestRequests(t *testing.T) {
	p := hj212test.Start(t, hj212test.ModeAck)
	b := newBuffer(t)
	now := t0.Add(3 * time.Minute) // after every reading's second: no frame waits
	r := startAt(t, b, testConfig(p.Addr()), func() time.Time { return now })
	first := mustAppend(t, b, reading("sonde-1", "water_temperature", 18, "°C", t0, telemetry.Good))
	r.waitConfirmed(t, first) // connected, and the platform knows the connection
	receive(t, p, 1)
	mn, pw := "010000A8900016F000169DC0", "123456"
	qn := 0
	req := func(cn, pw, mn string, flag hj212.Flag, cp hj212.CP) string {
		qn++
		q := fmt.Sprintf("20261121140100%03d", qn)
		if err := p.Send(hj212.Packet{QN: q, ST: "21", CN: cn, PW: pw, MN: mn, Flag: flag, CP: cp}); err != nil {
			t.Fatal(err)
		}
		return q
	}
	tests := []struct {
		name string
		cn   string
		pw   string
		mn   string
		cp   hj212.CP
		want []string // CN and CP of each answer
	}{
		{"get time", "1011", pw, mn, hj212.CP{{{Name: "PolId", Value: "w01010"}}},
			[]string{"9011 QnRtn=1", "1011 PolId=w01010;SystemTime=20261121140300", "9012 ExeRtn=1"}},
		{"set time refused", "1012", pw, mn, hj212.CP{{{Name: "SystemTime", Value: "20200101000000"}}}, []string{"9011 QnRtn=2"}},
		{"OverTime and ReCount", "1000", pw, mn, hj212.CP{{{Name: "OverTime", Value: "5"}, {Name: "ReCount", Value: "2"}}},
			[]string{"9011 QnRtn=1", "9012 ExeRtn=1"}},
		{"bad OverTime", "1000", pw, mn, hj212.CP{{{Name: "OverTime", Value: "0"}, {Name: "ReCount", Value: "2"}}},
			[]string{"9011 QnRtn=1", "9012 ExeRtn=3"}},
		{"wrong password", "1011", "654321", mn, nil, []string{"9011 QnRtn=3"}},
		{"another MN", "1011", pw, "MN2", nil, []string{"9011 QnRtn=4"}},
		{"history not built", "2051", pw, mn, hj212.CP{{{Name: "BeginTime", Value: "20261121000000"}},
			{{Name: "EndTime", Value: "20261121140000"}}}, []string{"9011 QnRtn=2"}},
		{"stop real-time data", "2012", pw, mn, nil, []string{"9013 "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := req(tt.cn, tt.pw, tt.mn, 5, tt.cp)
			var got []string
			for _, f := range receive(t, p, len(tt.want)) {
				if f.QN != q || f.MN != mn || f.PW != pw || f.Flag != 4 {
					t.Errorf("answer %+v to QN %s", f, q)
				}
				got = append(got, f.CN+" "+f.CP.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("answers %q, want %q", got, tt.want)
			}
		})
	}
	// Stopped: a reading passes without a frame.
	paused := mustAppend(t, b, reading("sonde-1", "water_temperature", 19, "°C", t0.Add(time.Minute), telemetry.Good))
	r.waitConfirmed(t, paused)
	// Started again: frames again (the first thing the platform gets
	// after the answers to 2011 is the next reading's frame).
	q := req("2011", pw, mn, 5, nil)
	for _, f := range receive(t, p, 2) {
		if f.QN != q {
			t.Fatalf("answer %+v", f)
		}
	}
	last := mustAppend(t, b, reading("sonde-1", "water_temperature", 20, "°C", t0.Add(2*time.Minute), telemetry.Good))
	r.waitConfirmed(t, last)
	if f := receive(t, p, 1)[0]; f.CN != "2011" || value(f.CP, "DataTime") != "20261121140200" {
		t.Fatalf("after 2011: %+v", f)
	}
	if extra := drained(p); len(extra) != 0 {
		t.Fatalf("unexpected frames %+v", extra)
	}
	if n := testutil.ToFloat64(r.m.skipped.WithLabelValues("plat", SkipPaused)); n != 1 {
		t.Fatalf("paused readings %v, want 1", n)
	}
}

// TestHeartbeat: with heartbeat set, an idle link carries 9015 frames with
// an empty data area; frames of data count as traffic.
func TestHeartbeat(t *testing.T) {
	p := hj212test.Start(t, hj212test.ModeSilent)
	b := newBuffer(t)
	c := testConfig(p.Addr())
	c.Heartbeat, c.Edition = 20*time.Millisecond, 2025
	start(t, b, c)
	for i, f := range receive(t, p, 3) {
		if f.CN != "9015" || len(f.CP) != 0 || f.Flag != 8 || f.MN != c.MN {
			t.Fatalf("frame %d: %+v", i, f)
		}
	}
}

// TestHistoryRequest: with history kept in the buffer, a platform's 2051
// request (C.20) is answered 9011, then the minute aggregates of the
// periods it names that the buffer holds whole, each awaiting its 9014,
// then 9012 — all computed from readings the real-time uplink had long
// confirmed. A range the buffer holds nothing of gets ExeRtn=100.
func TestHistoryRequest(t *testing.T) {
	p := hj212test.Start(t, hj212test.ModeAck)
	b, err := buffer.Open(buffer.Options{Dir: t.TempDir(), Fsync: buffer.FsyncOff, Consumers: []string{"plat"},
		RetainBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	var last uint64
	for i := range 8 { // 14:00, 14:05, … 14:35
		last = mustAppend(t, b, reading("sonde-1", "water_temperature", float64(10+i), "°C",
			t0.Add(time.Duration(5*i)*time.Minute), telemetry.Good))
	}
	b.Trim(last) // the cloud has it all too: kept only as history
	r := startAt(t, b, testConfig(p.Addr()), func() time.Time { return t0.Add(time.Hour) },
		func(o *Options) { o.History = true })
	r.waitConfirmed(t, last)
	receive(t, p, 8)
	if s := b.Stats(); s.Held != 0 || s.RetainedBytes == 0 {
		t.Fatalf("stats %+v: want everything confirmed and kept", s)
	}
	tests := []struct {
		name, begin, end string
		want             []string
	}{
		{"three periods", "20261121140000", "20261121142000", []string{
			"9011 QnRtn=1",
			"2051 DataTime=20261121140000;w01010-Avg=10.5,w01010-Min=10.0,w01010-Max=11.0,w01010-Flag=N",
			"2051 DataTime=20261121141000;w01010-Avg=12.5,w01010-Min=12.0,w01010-Max=13.0,w01010-Flag=N",
			"2051 DataTime=20261121142000;w01010-Avg=14.5,w01010-Min=14.0,w01010-Max=15.0,w01010-Flag=N",
			"9012 ExeRtn=1"}},
		{"before anything kept", "20261121100000", "20261121120000", []string{"9011 QnRtn=1", "9012 ExeRtn=100"}},
		{"end before begin", "20261121142000", "20261121140000", []string{"9011 QnRtn=1", "9012 ExeRtn=3"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qn := fmt.Sprintf("2026112115000000%d", i)
			err := p.Send(hj212.Packet{QN: qn, ST: "21", CN: "2051", PW: "123456", MN: "010000A8900016F000169DC0", Flag: 5,
				CP: hj212.CP{{{Name: "BeginTime", Value: tt.begin}}, {{Name: "EndTime", Value: tt.end}}}})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range receive(t, p, len(tt.want)) {
				got = append(got, f.CN+" "+f.CP.String())
				if (f.CN == "9011" || f.CN == "9012") && f.QN != qn {
					t.Errorf("answer %+v with another QN", f)
				}
				if f.CN == "2051" && (f.QN == qn || f.Flag != 5) {
					t.Errorf("upload %+v: want its own QN and Flag 5", f)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestAggregateSurvivesRestart: a period open when the gateway stops is
// computed again from the buffer after a restart (its cursor stays before
// the period's first reading), so the aggregate holds the readings of both
// runs, sent once.
func TestAggregateSurvivesRestart(t *testing.T) {
	p := hj212test.Start(t, hj212test.ModeAck)
	opts, c, wt := minuteSetup(t, p.Addr())
	now := func() time.Time { return t0.Add(5 * time.Minute) } // the period 14:00 (due at 14:11) is open

	b, err := buffer.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	r := startAt(t, b, c, now)
	first := mustAppend(t, b, wt(10, 0), wt(11, 1))
	r.waitConfirmed(t, first) // the real-time frames went; the minute period 14:00 is open
	receive(t, p, 2)
	r.stop()
	b.Close()

	b, err = buffer.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if got := b.Consumer("plat.minute").Confirmed(); got != 0 {
		t.Fatalf("minute cursor %d after the restart, want 0 (before the open period)", got)
	}
	r = startAt(t, b, c, func() time.Time { return t0.Add(10*time.Minute + 30*time.Second) })
	mustAppend(t, b, wt(13, 5))
	closing := mustAppend(t, b, wt(20, 10))
	r.waitCursor(t, "plat.minute", closing-1)
	var minute []string
	for _, f := range receive(t, p, 3) { // two real-time frames, one aggregate (in either order)
		if f.CN == "2051" {
			minute = append(minute, f.CP.String())
		}
	}
	want := []string{"DataTime=20261121140000;w01010-Avg=11.3,w01010-Min=10.0,w01010-Max=13.0,w01010-Flag=N"}
	if !slices.Equal(minute, want) {
		t.Fatalf("minute frames %q, want %q", minute, want)
	}
}

// TestRealtimeWaitsForItsSecond: a frame at the end of the buffer waits
// until its second is over (and a grace) for readings of that second still
// to come, so that another device polled in the same second joins it; once
// due, it goes.
func TestRealtimeWaitsForItsSecond(t *testing.T) {
	p := hj212test.Start(t, hj212test.ModeAck)
	b := newBuffer(t)
	var mu sync.Mutex
	now := t0
	idle := make(chan struct{}, 100)
	r := startAt(t, b, testConfig(p.Addr()), func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		func(o *Options) {
			o.idle = func() {
				select {
				case idle <- struct{}{}:
				default: // the test is past waiting
				}
			}
		})
	waitIdle := func() {
		t.Helper()
		select {
		case <-idle:
		case <-time.After(waitLimit):
			t.Fatal("the uplink never went idle")
		}
	}
	waitIdle() // connected, nothing in the buffer
	mustAppend(t, b, reading("sonde-1", "water_temperature", 18, "°C", t0, telemetry.Good))
	waitIdle() // it has seen the reading, and waits for its second to be over
	if extra := drained(p); len(extra) != 0 {
		t.Fatalf("sent before its second was over: %+v", extra)
	}
	// The second device of that second; then time passes and a later
	// reading wakes the uplink.
	mustAppend(t, b, reading("met-1", "air_pressure", 101.3, "kPa", t0.Add(300*time.Millisecond), telemetry.Good))
	mu.Lock()
	now = t0.Add(10 * time.Second)
	mu.Unlock()
	last := mustAppend(t, b, reading("sonde-1", "water_temperature", 18.5, "°C", t0.Add(4*time.Second), telemetry.Good))
	r.waitConfirmed(t, last)
	var got []string
	for _, f := range receive(t, p, 2) {
		got = append(got, f.CP.String())
	}
	want := []string{
		"DataTime=20261121140000;w01010-Rtd=18.0,w01010-Flag=N;a01006-Rtd=101.300,a01006-Flag=N",
		"DataTime=20261121140004;w01010-Rtd=18.5,w01010-Flag=N",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("frames %q, want %q", got, want)
	}
}

// minuteSetup is a buffer with the uplink's real-time and minute cursors,
// an uplink sending water temperature (w01010) as real-time and minute
// data to addr, and wt: a reading of v at t0 + m minutes.
func minuteSetup(t *testing.T, addr string) (buffer.Options, config.HJ212Uplink, func(v float64, m int) telemetry.Reading) {
	opts := buffer.Options{Dir: t.TempDir(), Fsync: buffer.FsyncOff, Consumers: []string{"plat", "plat.minute"}}
	c := testConfig(addr)
	c.Factors = map[string]string{"water_temperature": "w01010"}
	c.Minute = true
	wt := func(v float64, m int) telemetry.Reading {
		return reading("sonde-1", "water_temperature", v, "°C", t0.Add(time.Duration(m)*time.Minute), telemetry.Good)
	}
	return opts, c, wt
}
