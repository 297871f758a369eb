package rfid

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// read is a frame arriving at an offset from t0.
type read struct {
	at    time.Duration
	frame []byte
}

// play feeds reads in order, ticks each whole second up to end, and
// returns the events.
func play(t *testing.T, d *Decoder, reads []read, end time.Duration) []telemetry.Event {
	t.Helper()
	var evs []telemetry.Event
	i := 0
	for s := time.Duration(0); s <= end; s += time.Second {
		for ; i < len(reads) && reads[i].at < s; i++ {
			evs = append(evs, d.Feed(reads[i].frame, t0.Add(reads[i].at)).Events...)
		}
		evs = append(evs, d.Tick(t0.Add(s)).Events...)
	}
	checkEvents(t, evs)
	return evs
}

func every(frame []byte, from, to, period time.Duration) []read {
	var rs []read
	for at := from; at < to; at += period {
		rs = append(rs, read{at, frame})
	}
	return rs
}

func merge(a, b []read) []read {
	var out []read
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || len(a) > 0 && a[0].at <= b[0].at {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}

func TestDedup(t *testing.T) {
	tagA, tagB := em("14008EC793"), em("0102030405")
	cases := []struct {
		name     string
		minReads int
		noTicks  bool
		reads    []read
		want     []string
		errors   map[string]uint64
	}{
		{
			name:  "tag held 10 s, read every 100 ms",
			reads: every(tagA, 0, 10*time.Second, 100*time.Millisecond),
			want: []string{
				"14008EC793 08:00:00.000 ntp count=1 decimal=0009357203 duration_s=0 state=present tag_type=em4100",
				"14008EC793 08:00:00.000 ntp count=100 decimal=0009357203 duration_s=9.9 state=gone tag_type=em4100",
			},
		},
		{
			name: "two tags interleaved",
			reads: merge(every(tagA, 0, 3*time.Second, 200*time.Millisecond),
				every(tagB, 500*time.Millisecond, 6*time.Second, 300*time.Millisecond)),
			want: []string{
				"14008EC793 08:00:00.000 ntp count=1 decimal=0009357203 duration_s=0 state=present tag_type=em4100",
				"0102030405 08:00:00.500 ntp count=1 decimal=0033752069 duration_s=0 state=present tag_type=em4100",
				"14008EC793 08:00:00.000 ntp count=15 decimal=0009357203 duration_s=2.8 state=gone tag_type=em4100",
				"0102030405 08:00:00.500 ntp count=19 decimal=0033752069 duration_s=5.4 state=gone tag_type=em4100",
			},
		},
		{
			name:  "a tag back after the window is a new event",
			reads: append(every(tagA, 0, time.Second, 500*time.Millisecond), every(tagA, 5*time.Second, 6*time.Second, 500*time.Millisecond)...),
			want: []string{
				"14008EC793 08:00:00.000 ntp count=1 decimal=0009357203 duration_s=0 state=present tag_type=em4100",
				"14008EC793 08:00:00.000 ntp count=2 decimal=0009357203 duration_s=0.5 state=gone tag_type=em4100",
				"14008EC793 08:00:05.000 ntp count=1 decimal=0009357203 duration_s=0 state=present tag_type=em4100",
				"14008EC793 08:00:05.000 ntp count=2 decimal=0009357203 duration_s=0.5 state=gone tag_type=em4100",
			},
		},
		{
			name:  "a gap within the window continues the event",
			reads: []read{{0, tagA}, {1900 * time.Millisecond, tagA}, {3800 * time.Millisecond, tagA}},
			want: []string{
				"14008EC793 08:00:00.000 ntp count=1 decimal=0009357203 duration_s=0 state=present tag_type=em4100",
				"14008EC793 08:00:00.000 ntp count=3 decimal=0009357203 duration_s=3.8 state=gone tag_type=em4100",
			},
		},
		{
			// No Tick between the visits: the read that starts the second
			// visit ends the first.
			name:    "a return before any tick",
			noTicks: true,
			reads:   []read{{0, tagA}, {2100 * time.Millisecond, tagA}, {2200 * time.Millisecond, tagA}},
			want: []string{
				"14008EC793 08:00:00.000 ntp count=1 decimal=0009357203 duration_s=0 state=present tag_type=em4100",
				"14008EC793 08:00:00.000 ntp count=1 decimal=0009357203 duration_s=0 state=gone tag_type=em4100",
				"14008EC793 08:00:02.100 ntp count=1 decimal=0009357203 duration_s=0 state=present tag_type=em4100",
			},
		},
		{
			name:     "min_reads delays the present version",
			minReads: 3,
			reads:    every(tagA, 0, 2*time.Second, 500*time.Millisecond),
			want: []string{
				"14008EC793 08:00:00.000 ntp count=3 decimal=0009357203 duration_s=1 state=present tag_type=em4100",
				"14008EC793 08:00:00.000 ntp count=4 decimal=0009357203 duration_s=1.5 state=gone tag_type=em4100",
			},
		},
		{
			name:     "a visit below min_reads is counted, not reported",
			minReads: 3,
			reads:    every(tagA, 0, time.Second, 500*time.Millisecond),
			errors:   errs(StatUnconfirmed, 1),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := New(Config{Protocol: EM4100RDM6300, MinReads: c.minReads}, testDevice, func() telemetry.ClockQuality { return telemetry.ClockNTP })
			var got []string
			if c.noTicks {
				var evs []telemetry.Event
				for _, r := range c.reads {
					evs = append(evs, d.Feed(r.frame, t0.Add(r.at)).Events...)
				}
				got = summaries(evs)
			} else {
				got = summaries(play(t, d, c.reads, 12*time.Second))
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("unexpected events\ngot  %q\nwant %q", got, c.want)
			}
			if e := d.Stats().Errors; !reflect.DeepEqual(e, c.errors) {
				t.Errorf("unexpected errors; got %v; want %v", e, c.errors)
			}
		})
	}
}

func TestDedupIdentity(t *testing.T) {
	// The two versions of an event share Device, Kind, Key, Time and Clock.
	clock := telemetry.ClockGPS
	d := New(Config{Protocol: EM4100RDM6300}, testDevice, func() telemetry.ClockQuality { return clock })
	evs := play(t, d, every(em("14008EC793"), 0, 10*time.Second, 100*time.Millisecond), 15*time.Second)
	if len(evs) != 2 {
		t.Fatalf("unexpected events; got %d; want 2", len(evs))
	}
	clock = telemetry.ClockUnsynced // a clock change mid-visit does not change the identity
	a, b := evs[0], evs[1]
	if a.Device != b.Device || a.Kind != b.Kind || a.Key != b.Key || !a.Time.Equal(b.Time) || a.Clock != b.Clock || a.Clock != telemetry.ClockGPS {
		t.Errorf("unexpected identities %+v and %+v", a, b)
	}
	if n := b.Values[ValueCount]; n < 99 || n > 101 {
		t.Errorf("unexpected count; got %g; want 100±1", n)
	}
	a.Attrs["x"] = "mutated" // events own their maps
	if _, ok := b.Attrs["x"]; ok {
		t.Error("events share an attribute map")
	}
}

func TestDedupBound(t *testing.T) {
	d := newTest(EM4100RDM6300)
	var n int
	for i := 0; i <= MaxTracked; i++ {
		n += len(d.Feed(em(fmt.Sprintf("01%08X", i+1)), t0).Events)
	}
	if n != MaxTracked {
		t.Errorf("unexpected present events; got %d; want %d", n, MaxTracked)
	}
	if got := d.Stats().Errors[StatOverflow]; got != 1 {
		t.Errorf("unexpected overflow count; got %d; want 1", got)
	}
	// Once the tracked tags left, new ones are followed again, even
	// before a Tick ended the old visits.
	out := d.Feed(em("0200000001"), t0.Add(3*time.Second))
	if len(out.Events) != MaxTracked+1 || out.Events[MaxTracked].Attrs[AttrState] != StatePresent {
		t.Fatalf("unexpected events after the window; got %d", len(out.Events))
	}
	if out := d.Tick(t0.Add(10 * time.Second)); len(out.Events) != 1 || out.Events[0].Key != "0200000001" {
		t.Errorf("unexpected events at the tick: %v", summaries(out.Events))
	}
}

func TestClockStepBack(t *testing.T) {
	d := newTest(EM4100RDM6300)
	f := em("14008EC793")
	d.Feed(f, t0)
	d.Feed(f, t0.Add(-time.Hour)) // the clock was stepped back
	out := d.Tick(t0.Add(-time.Hour + 3*time.Second))
	checkEvents(t, out.Events)
	if len(out.Events) != 1 || out.Events[0].Values[ValueDuration] != 0 || out.Events[0].Values[ValueCount] != 2 {
		t.Errorf("unexpected events %v", summaries(out.Events))
	}
}
