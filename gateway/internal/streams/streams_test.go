package streams

import (
	"context"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/drivers/nmea"
	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/drivers/stream"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// wait bounds every wait in these tests.
const wait = 20 * time.Second

func ntp() telemetry.ClockQuality { return telemetry.ClockNTP }

// decoder builds the decoder of a built-in profile.
func decoder(t testing.TB, model, device string, mooring *nmea.Mooring) stream.Decoder {
	t.Helper()
	set, err := profiles.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := set.Get(model)
	if !ok {
		t.Fatalf("no profile %s", model)
	}
	d, err := p.NewDecoder(device, ntp, mooring)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// recorder is a sink that keeps everything.
type recorder struct {
	mu       sync.Mutex
	readings []telemetry.Reading
	events   []telemetry.Event
}

func (r *recorder) sink(out stream.Output) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rd := range out.Readings {
		if err := rd.Validate(); err != nil {
			panic(err) // a decoder handed the buffer a reading it would refuse
		}
	}
	r.readings = append(r.readings, out.Readings...)
	r.events = append(r.events, out.Events...)
	return nil
}

func (r *recorder) snapshot() ([]telemetry.Reading, []telemetry.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]telemetry.Reading(nil), r.readings...), append([]telemetry.Event(nil), r.events...)
}

func testLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
func testMetrics() *Metrics { return NewMetrics(prometheus.NewRegistry()) }

// ofKind returns the events of one kind.
func ofKind(es []telemetry.Event, kind string) []telemetry.Event {
	var out []telemetry.Event
	for _, e := range es {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// start runs d until the test ends.
func start(t *testing.T, d Device, snk Sink) *Runner {
	t.Helper()
	r := NewRunner(d, snk, testLog(), testMetrics())
	run(t, r)
	return r
}

// run runs r until the test ends.
func run(t *testing.T, r *Runner) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("runner did not stop")
		}
	})
}

// plug puts a simulated device on a pty behind a link in a temp dir.
func plug(t *testing.T, mode serialport.Mode, every time.Duration, gen func(time.Time) []byte,
	respond func([]byte, time.Time) []byte) *sim.StreamPort {
	t.Helper()
	p := sim.NewStreamPort(filepath.Join(t.TempDir(), "tty"), mode, every, gen, respond)
	if err := p.Plug(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Unplug(nil) })
	return p
}

// TestBuoyOnPTY reads a simulated buoy on a real pseudo-terminal at 9600
// baud, with garbage, binary noise, bad checksums and overlong lines mixed
// in: every intact sentence is decoded, every fault is counted by kind, the
// buoy's drift off its mooring is one event, and a port unplugged
// mid-sentence is reopened.
func TestBuoyOnPTY(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		talking bool
		bursts  int // bursts sent while talking
	)
	// The buoy drifts by burst, not by wall time: how many bursts a slow
	// or a fast machine sends in a given time varies, and the test needs
	// some on the mooring and then some off it.
	const driftFrom = 4
	buoy := &sim.BuoyStream{Env: sim.Environment{Seed: 3}, Lat: 60.0845, Lon: 23.5391, Met: "XDR", Waves: true, Seed: 7,
		Faults: sim.BuoyFaults{Garbage: 0.05, Binary: 0.05, BadChecksum: 0.05, Overlong: 0.03},
		// Off the mooring by 400 m east from the fourth burst on (called
		// by Next, under mu).
		Drift: func(time.Time) (float64, float64) {
			if bursts >= driftFrom {
				return 0, 400
			}
			return 0, 0
		}}
	gen := func(now time.Time) []byte {
		mu.Lock()
		defer mu.Unlock()
		if !talking {
			return nil
		}
		bursts++
		return buoy.Next(now)
	}
	counts := func() sim.BuoyCounts {
		mu.Lock()
		defer mu.Unlock()
		return buoy.Counts
	}
	drifted := func() int {
		mu.Lock()
		defer mu.Unlock()
		return max(0, bursts-driftFrom+1)
	}
	setTalking := func(on bool) {
		mu.Lock()
		talking = on
		mu.Unlock()
	}
	mode := serialport.Mode{Baud: 9600}
	port := plug(t, mode, time.Second, gen, nil)
	rec := &recorder{}
	r := start(t, Device{ID: "buoy-1", Profile: "generic/met-buoy-gmx500-awac", Open: Serial(port.Link, mode),
		Decoder:     decoder(t, "generic/met-buoy-gmx500-awac", "buoy-1", &nmea.Mooring{Lat: 60.0845, Lon: 23.5391, RadiusM: 150}),
		SilentAfter: 30 * time.Second}, rec.sink)
	testenv.Eventually(t, "port open", wait, func() bool { return r.Status().Connected })
	setTalking(true)
	testenv.Eventually(t, "faults of every kind sent, and bursts off the mooring", 3*wait, func() bool {
		c := counts()
		return c.Sentences > 40 && c.Garbage > 0 && c.Binary > 0 && c.BadChecksum > 0 && c.Overlong > 0 && c.Waves > 0 &&
			drifted() >= 3
	})
	setTalking(false)
	c := counts()
	testenv.Eventually(t, "every intact sentence decoded", wait, func() bool { return r.Status().Frames == uint64(c.Sentences) })
	st := r.Status()
	want := map[string]uint64{nmea.KindGarbage: uint64(c.Garbage), nmea.KindBinary: uint64(c.Binary),
		nmea.KindChecksum: uint64(c.BadChecksum), nmea.KindOverlong: uint64(c.Overlong)}
	if !maps.Equal(st.Errors, want) {
		t.Errorf("errors counted %v, injected %v", st.Errors, want)
	}
	if st.Health != "ok" || !st.Connected || st.Reconnects != 0 {
		t.Errorf("status %+v", st)
	}
	readings, events := rec.snapshot()
	got := map[string]bool{}
	for _, rd := range readings {
		got[rd.Metric] = true
		if rd.Device != "buoy-1" {
			t.Fatalf("reading of device %q", rd.Device)
		}
	}
	for _, m := range []string{"wind_speed", "wind_direction", "air_temperature", "air_pressure", "air_humidity",
		"water_temperature", "latitude", "longitude", "wave_height"} {
		if !got[m] {
			t.Errorf("no %s among %v", m, got)
		}
	}
	if len(events) != 1 || events[0].Kind != telemetry.EventDrift || events[0].Attrs["state"] != nmea.StateDrifting ||
		math.Abs(events[0].Values["distance_m"]-400) > 10 {
		t.Errorf("drift events %+v; want one, drifting, about 400 m", events)
	}

	// Unplugged in the middle of a sentence: the port fails, the runner
	// reopens it once it is back, and the cut sentence is counted.
	port.Unplug([]byte("$WIMWV,225.0,T,08"))
	testenv.Eventually(t, "loss noticed", wait, func() bool { s := r.Status(); return !s.Connected && s.Health == "failing" })
	if err := port.Plug(context.Background()); err != nil {
		t.Fatal(err)
	}
	setTalking(true)
	testenv.Eventually(t, "reading again", wait, func() bool {
		s := r.Status()
		return s.Connected && s.Health == "ok" && s.Frames > uint64(c.Sentences)+8
	})
	st = r.Status()
	if st.Reconnects != 1 {
		t.Errorf("reconnects %d, want 1", st.Reconnects)
	}
	if st.Errors[nmea.KindCut] != 1 {
		t.Errorf("the cut sentence counted %d times, want once: %v", st.Errors[nmea.KindCut], st.Errors)
	}
}

// TestEM4100ReaderOnPTY: a tag held at an RDM6300 for two seconds, read ten
// times a second through corrupted frames and noise, is one event whose
// final count is the number of good reads; and a reader unplugged
// mid-frame is reopened and reads on.
func TestEM4100ReaderOnPTY(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	reader := sim.NewEM4100Reader(5)
	reader.Faults = sim.RFIDFaults{Corrupt: 0.15, Garbage: 0.15}
	gen := func(now time.Time) []byte {
		mu.Lock()
		defer mu.Unlock()
		return reader.Read(now)
	}
	mode := serialport.Mode{Baud: 9600}
	port := plug(t, mode, 20*time.Millisecond, gen, nil)
	rec := &recorder{}
	r := start(t, Device{ID: "gate", Profile: "priority/rdm6300", Open: Serial(port.Link, mode),
		Decoder: decoder(t, "priority/rdm6300", "gate", nil)}, rec.sink)
	testenv.Eventually(t, "port open", wait, func() bool { return r.Status().Connected })

	mu.Lock()
	reader.Present("14008EC793", time.Now())
	mu.Unlock()
	// Held until the reader has sent a dozen good frames, however slowly
	// a loaded machine runs its ticker.
	testenv.Eventually(t, "a dozen good frames sent", wait, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return reader.Counts.Good >= 12
	})
	mu.Lock()
	reader.Remove()
	c := reader.Counts
	mu.Unlock()
	testenv.Eventually(t, "the visit ends", wait, func() bool {
		_, events := rec.snapshot()
		return len(events) == 2
	})
	_, events := rec.snapshot()
	present, gone := events[0], events[1]
	if present.Key != "14008EC793" || present.Attrs["state"] != "present" || gone.Attrs["state"] != "gone" ||
		!gone.Time.Equal(present.Time) || gone.Key != present.Key {
		t.Fatalf("events %+v; want one visit: present, then gone with the same key and time", events)
	}
	if n := gone.Values["count"]; n != float64(c.Good) || c.Good < 10 {
		t.Errorf("visit counted %v reads; the reader sent %d good frames (%+v)", n, c.Good, c)
	}
	st := r.Status()
	if st.Errors["checksum"] != uint64(c.Corrupt) || c.Corrupt == 0 || st.Errors["garbage"] == 0 {
		t.Errorf("errors %v; injected %+v", st.Errors, c)
	}
	if st.Health != "ok" {
		t.Errorf("a reader without a tag is %s, want ok", st.Health)
	}

	// Unplugged mid-frame; a new tag is read after the replug.
	port.Unplug(sim.EM4100Frame("0A0B0C0D0E", false)[:6])
	testenv.Eventually(t, "loss noticed", wait, func() bool { return !r.Status().Connected })
	if err := port.Plug(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	reader.Faults = sim.RFIDFaults{}
	reader.Present("0A0B0C0D0E", time.Now())
	mu.Unlock()
	testenv.Eventually(t, "the new tag read", wait, func() bool {
		_, events := rec.snapshot()
		tags := ofKind(events, telemetry.EventTag)
		return len(tags) == 3 && tags[2].Key == "0A0B0C0D0E"
	})
	// The unplugged reader is lost and restored, once each.
	_, events = rec.snapshot()
	if conn := ofKind(events, telemetry.EventConnection); len(conn) != 2 || conn[0].Attrs["state"] != "lost" ||
		conn[1].Attrs["state"] != "restored" {
		t.Errorf("connection events %+v; want lost, restored", conn)
	}
	if st := r.Status(); st.Reconnects != 1 || st.Errors["cut"] != 1 {
		t.Errorf("status after the replug %+v", st)
	}
}

// TestPN532OnPTY: the decoder wakes, configures and polls a simulated
// PN532 through the port; a card in the field is one event, and its
// removal ends the visit.
func TestPN532OnPTY(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	chip := sim.NewPN532(11)
	chip.Asleep = true
	chip.Faults = sim.PN532Faults{NACK: 0.05, BadDCS: 0.05}
	respond := func(in []byte, _ time.Time) []byte {
		mu.Lock()
		defer mu.Unlock()
		return chip.Write(in)
	}
	mode := serialport.Mode{Baud: 115200}
	port := plug(t, mode, time.Second, nil, respond)
	rec := &recorder{}
	r := start(t, Device{ID: "desk", Profile: "nxp/pn532", Open: Serial(port.Link, mode),
		Decoder: decoder(t, "nxp/pn532", "desk", nil)}, rec.sink)
	testenv.Eventually(t, "polling", wait, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return chip.Counts.Responses > 5
	})
	mu.Lock()
	chip.Card = &sim.NFCCard{UID: []byte{0x04, 0xA2, 0x24, 0x12, 0x34, 0x56, 0x80}, ATQA: [2]byte{0x00, 0x44}, SAK: 0x00}
	mu.Unlock()
	testenv.Eventually(t, "card read", wait, func() bool { _, ev := rec.snapshot(); return len(ev) == 1 })
	// Held in the field for ten more answers (polls), not for a time a
	// loaded machine might spend on fewer.
	mu.Lock()
	seen := chip.Counts.Responses
	mu.Unlock()
	testenv.Eventually(t, "ten more polls with the card", wait, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return chip.Counts.Responses >= seen+10
	})
	mu.Lock()
	chip.Card = nil
	mu.Unlock()
	testenv.Eventually(t, "card gone", wait, func() bool { _, ev := rec.snapshot(); return len(ev) == 2 })
	_, ev := rec.snapshot()
	if ev[0].Key != "04A22412345680" || ev[0].Attrs["tag_type"] != "iso14443a" || ev[1].Attrs["state"] != "gone" ||
		ev[1].Values["count"] < 2 {
		t.Errorf("events %+v", ev)
	}
	if st := r.Status(); st.Health != "ok" || st.Frames == 0 {
		t.Errorf("status %+v", st)
	}
}

// TestNMEAOverTCP: an NMEA multiplexer on TCP that drops the connection is
// dialled again.
func TestNMEAOverTCP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := accepted.Add(1)
			go func() {
				defer c.Close()
				// Each connection sends a few sentences; the first ends
				// with half of one and hangs up.
				for range 3 {
					c.Write([]byte("$INMTW,12.3,C*14\r\n"))
					time.Sleep(50 * time.Millisecond)
				}
				if n == 1 {
					c.Write([]byte("$INMTW,12"))
					return
				}
				time.Sleep(time.Minute)
			}()
		}
	}()
	rec := &recorder{}
	r := start(t, Device{ID: "mux", Profile: "generic/met-buoy-gmx500-awac", Open: TCP(ln.Addr().String()),
		Decoder: decoder(t, "generic/met-buoy-gmx500-awac", "mux", nil)}, rec.sink)
	testenv.Eventually(t, "six sentences over two connections", wait, func() bool { return r.Status().Frames == 6 })
	st := r.Status()
	if st.Reconnects != 1 || st.Errors[nmea.KindCut] != 1 || accepted.Load() != 2 || !st.Connected {
		t.Errorf("status %+v after %d connections; want one reconnect and the cut sentence counted", st, accepted.Load())
	}
	readings, _ := rec.snapshot()
	if len(readings) != 6 || readings[0].Metric != "water_temperature" || readings[0].Value != 12.3 {
		t.Errorf("readings %+v", readings)
	}
}

// TestNDBCFeed fetches an NDBC realtime2 file: the first fetch takes every
// row, the next only rows newer than the last, and a feed that fails is
// failing until it answers again.
func TestNDBCFeed(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../../drivers/ndbc/testdata/41010.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSpace(string(data))+"\n", "\n")
	lines = lines[:len(lines)-1] // the empty string after the last newline
	header, rows := strings.Join(lines[:2], ""), lines[2:]
	var (
		mu   sync.Mutex
		body = header + strings.Join(rows[1:], "") // the newest row comes later
		fail = false
	)
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	rec := &recorder{}
	r := start(t, Device{ID: "ndbc-41010", Profile: "noaa/ndbc-stdmet-realtime2", Fetch: HTTP(srv.URL),
		Interval: 200 * time.Millisecond, Decoder: decoder(t, "noaa/ndbc-stdmet-realtime2", "ndbc-41010", nil)}, rec.sink)
	testenv.Eventually(t, "first fetch", wait, func() bool { return r.Status().Frames > 0 })
	first := r.Status().Frames
	if first != uint64(len(rows)-1) {
		t.Errorf("first fetch took %d rows, the file has %d", first, len(rows)-1)
	}
	n0, _ := rec.snapshot()
	mu.Lock()
	fail = true
	mu.Unlock()
	testenv.Eventually(t, "failing", wait, func() bool { return r.Status().Health == "failing" })
	if !strings.Contains(r.Status().LastError, "503") {
		t.Errorf("last error %q", r.Status().LastError)
	}
	mu.Lock()
	fail, body = false, header+strings.Join(rows, "")
	mu.Unlock()
	testenv.Eventually(t, "the new row", wait, func() bool { return r.Status().Frames == first+1 })
	// More fetches of the same file: counted, not timed.
	after := fetches.Load()
	testenv.Eventually(t, "three more fetches", wait, func() bool { return fetches.Load() >= after+3 })
	n1, _ := rec.snapshot()
	if st := r.Status(); st.Frames != first+1 || st.Health != "ok" {
		t.Errorf("status %+v; want one more row and ok", st)
	}
	fresh := n1[len(n0):]
	if len(fresh) == 0 || !fresh[0].Time.Equal(time.Date(2026, 9, 26, 0, 10, 0, 0, time.UTC)) {
		t.Errorf("new readings %+v; want the 00:10 row's", fresh)
	}
}

// TestChunkLinesDated: sentences read in one chunk are dated by when each
// ended on the wire, so two of one metric are two samples.
func TestChunkLinesDated(t *testing.T) {
	const line = "$INMTW,12.3,C*14\r\n" // 18 bytes
	charTime := serialport.Mode{Baud: 4800}.CharTime()
	r := NewRunner(Device{ID: "probe", Decoder: decoder(t, "generic/met-buoy-gmx500-awac", "probe", nil), CharTime: charTime},
		nil, slog.New(slog.DiscardHandler), NewMetrics(prometheus.NewRegistry()))
	now := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	out := r.feed([]byte(line+line+"$INMTW,12"), now)
	if len(out.Readings) != 2 {
		t.Fatalf("readings %+v", out.Readings)
	}
	first, second := out.Readings[0].Time, out.Readings[1].Time
	if want := now.Add(-time.Duration(len(line)+9) * charTime); !first.Equal(want) {
		t.Errorf("first sentence dated %v, want %v (the wire time of what followed it in the chunk)", first, want)
	}
	if want := now.Add(-9 * charTime); !second.Equal(want) {
		t.Errorf("second sentence dated %v, want %v", second, want)
	}
}
