package streams

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// healthLog records the health the runner reports each time it calls
// Device.Changed.
type healthLog struct {
	mu  sync.Mutex
	r   *Runner
	got []string
}

func (h *healthLog) changed() {
	st := h.r.Status()
	h.mu.Lock()
	h.got = append(h.got, st.Health)
	h.mu.Unlock()
}

func (h *healthLog) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// TestConnectionEvents unplugs a water-temperature probe on a pty while
// the runner reads it, and keeps it out while the runner tries to reopen
// it twice: one "lost" event, then one "restored" when it is back. A probe
// absent when the runner starts is lost from the start. The health hook
// hears each change of health once.
func TestConnectionEvents(t *testing.T) {
	tests := []struct {
		name        string
		plugged     bool // at start
		wantHealths []string
	}{
		{"unplugged while read", true, []string{"ok", "failing", "ok"}},
		{"absent at start", false, []string{"failing", "ok"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mode := serialport.Mode{Baud: 9600}
			port := sim.NewStreamPort(filepath.Join(t.TempDir(), "tty"), mode, 100*time.Millisecond,
				func(time.Time) []byte { return []byte("$INMTW,12.3,C*14\r\n") }, nil)
			t.Cleanup(func() { port.Unplug(nil) })
			if tc.plugged {
				if err := port.Plug(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			var opens atomic.Int32
			serial := Serial(port.Link, mode)
			rec := &recorder{}
			h := &healthLog{}
			d := Device{ID: "probe", Profile: "generic/met-buoy-gmx500-awac",
				Open:    func(ctx context.Context) (Conn, error) { opens.Add(1); return serial(ctx) },
				Decoder: decoder(t, "generic/met-buoy-gmx500-awac", "probe", nil), Clock: ntp, Changed: h.changed}
			h.r = NewRunner(d, rec.sink, testLog(), testMetrics())
			r := h.r
			run(t, r)
			if tc.plugged {
				testenv.Eventually(t, "readings", wait, func() bool { rd, _ := rec.snapshot(); return len(rd) > 0 })
				before := time.Now()
				testenv.Eventually(t, "last read dated", wait, func() bool { return r.Status().LastRead.After(before) })
				port.Unplug([]byte("$INMTW,1"))
			}
			// Two reopen attempts fail while the probe is out.
			n := opens.Load()
			testenv.Eventually(t, "two failed reopens", wait, func() bool {
				return opens.Load() >= n+2 && !r.Status().Connected
			})
			if err := port.Plug(context.Background()); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, "reading again", wait, func() bool {
				_, ev := rec.snapshot()
				return r.Status().Connected && len(ev) >= 2
			})
			testenv.Eventually(t, "health ok heard", wait, func() bool {
				hs := h.list()
				return len(hs) > 0 && hs[len(hs)-1] == "ok"
			})
			_, events := rec.snapshot()
			if len(events) != 2 {
				t.Fatalf("events %+v; want lost, restored", events)
			}
			lost, restored := events[0], events[1]
			for _, e := range events {
				if err := e.Validate(); err != nil {
					t.Fatal(err)
				}
				if e.Device != "probe" || e.Kind != telemetry.EventConnection || e.Clock != telemetry.ClockNTP {
					t.Errorf("event %+v", e)
				}
			}
			if lost.Attrs["state"] != "lost" || lost.Attrs["error"] == "" || restored.Attrs["state"] != "restored" ||
				restored.Attrs["error"] != "" || !restored.Time.After(lost.Time) {
				t.Errorf("events %+v; want lost with its error, then restored", events)
			}
			if !tc.plugged && !strings.Contains(lost.Attrs["error"], "tty") {
				t.Errorf("lost at start: error %q does not name the port", lost.Attrs["error"])
			}
			if got := h.list(); strings.Join(got, " ") != strings.Join(tc.wantHealths, " ") {
				t.Errorf("health changes heard %v, want %v", got, tc.wantHealths)
			}
		})
	}
}

// TestSilenceHeard: a buoy that stops talking for longer than its
// silent_after turns failing, and ok when it talks again; the health hook
// hears both, while the port stays open and no connection event is sent.
// The runner's clock moves only while the test wants the buoy silent, so
// a loaded machine that delivers the talking buoy's sentences late cannot
// make it look silent.
func TestSilenceHeard(t *testing.T) {
	t.Parallel()
	var talking atomic.Bool
	talking.Store(true)
	mode := serialport.Mode{Baud: 9600}
	port := plug(t, mode, 100*time.Millisecond, func(time.Time) []byte {
		if !talking.Load() {
			return nil
		}
		return []byte("$INMTW,12.3,C*14\r\n")
	}, nil)
	rec := &recorder{}
	h := &healthLog{}
	h.r = NewRunner(Device{ID: "buoy", Open: Serial(port.Link, mode), SilentAfter: 1500 * time.Millisecond,
		Decoder: decoder(t, "generic/met-buoy-gmx500-awac", "buoy", nil), Changed: h.changed}, rec.sink, testLog(), testMetrics())
	var (
		clockMu sync.Mutex
		clock   = time.Now()
	)
	h.r.now = func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		return clock
	}
	run(t, h.r)
	last := func(want string) func() bool {
		return func() bool { hs := h.list(); return len(hs) > 0 && hs[len(hs)-1] == want }
	}
	testenv.Eventually(t, "ok", wait, last("ok"))
	talking.Store(false)
	testenv.Eventually(t, "failing when silent", wait, func() bool {
		clockMu.Lock()
		clock = clock.Add(500 * time.Millisecond) // time passes only now
		clockMu.Unlock()
		return last("failing")()
	})
	frames := h.r.Status().Frames
	talking.Store(true)
	testenv.Eventually(t, "talking again", wait, func() bool { return h.r.Status().Frames > frames })
	// The runner looks at its health on a read that waited its second
	// (real time) in vain; the held clock says the last frame is fresh.
	talking.Store(false)
	testenv.Eventually(t, "ok again", wait, last("ok"))
	if got := h.list(); strings.Join(got, " ") != "ok failing ok" {
		t.Errorf("health changes heard %v", got)
	}
	if _, ev := rec.snapshot(); len(ev) != 0 {
		t.Errorf("events %+v; silence is no connection event", ev)
	}
}
