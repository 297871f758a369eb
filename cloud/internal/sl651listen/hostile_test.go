package sl651listen

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/protocols/sl651"
)

const timed32 = "7E7E05001122334403E832002B020034170718110016F1F1001122334448F0F01707181100201900004026190000403923000104903812109903A421"

// TestRefusedThenTaken sends, on one connection, each kind of bad frame
// followed by a good one: the bad one is counted under its kind and never
// answered, the good one behind it is taken and confirmed.
func TestRefusedThenTaken(t *testing.T) {
	good := func(t *testing.T) []byte { return mustHex(t, timed32) }
	sent := time.Date(2026, 12, 2, 8, 0, 0, 0, cst)
	build := func(t *testing.T, mod func(*sl651.Frame)) []byte {
		f := report(t, sl651.HEX, sl651.FnTimed, 5, st2, 0x03E8, 9, sent, sent, ev{0x39, 1})
		mod(&f)
		return encode(t, f)
	}
	tests := []struct {
		name string
		bad  func(t *testing.T) []byte
		kind string
	}{
		{"garbage", func(t *testing.T) []byte { return []byte("AT+CIPSEND\r\n") }, sl651.KindGarbage},
		{"bad CRC", func(t *testing.T) []byte { b := good(t); b[len(b)-1] ^= 1; return b }, sl651.KindCRC},
		{"cut frame", func(t *testing.T) []byte { return good(t)[:40] }, sl651.KindCRC},
		{"unknown station", func(t *testing.T) []byte {
			return build(t, func(f *sl651.Frame) { f.Station = sl651.Address{0, 0x99, 0x99, 0x99, 0x99} })
		}, KindUnknownStation},
		{"body names an unknown station", func(t *testing.T) []byte {
			f := report(t, sl651.HEX, sl651.FnTimed, 5, sl651.Address{0, 0x99, 0x99, 0x99, 0x99}, 0x03E8, 9, sent, sent, ev{0x39, 1})
			f.Station = st2
			return encode(t, f)
		}, KindUnknownStation},
		{"wrong password", func(t *testing.T) []byte { return build(t, func(f *sl651.Frame) { f.Password = 0x1111 }) }, KindPassword},
		{"other centre", func(t *testing.T) []byte { return build(t, func(f *sl651.Frame) { f.Center = 6 }) }, KindCentral},
		{"down-link", func(t *testing.T) []byte {
			return mustHex(t, "7E7E00112233440503E83280080200341707181100161BE5D4")
		}, KindDirection},
		{"query answer", func(t *testing.T) []byte {
			return build(t, func(f *sl651.Frame) { f.Function = sl651.FnQueryRealtime })
		}, KindFunction},
		{"multi-packet", func(t *testing.T) []byte {
			return build(t, func(f *sl651.Frame) { f.Start, f.Total, f.Seq = sl651.SYN, 2, 1 })
		}, KindFunction},
		{"unknown element", func(t *testing.T) []byte {
			return build(t, func(f *sl651.Frame) { f.Body = append(bytes.Clone(f.Body), 0x77, 0x08, 0x01) })
		}, sl651.KindElement},
		{"not BCD", func(t *testing.T) []byte {
			return build(t, func(f *sl651.Frame) { f.Body = append(bytes.Clone(f.Body), 0x39, 0x23, 0x00, 0x0A, 0x00, 0x00) })
		}, sl651.KindBCD},
		{"bad ASCII length", func(t *testing.T) []byte {
			return []byte("\x01050011223344" + "03E8320" + "0G0" + "\x02")
		}, sl651.KindLength},
	}
	r := startRig(t, config.SL651{Central: 5, Stations: []config.SL651Station{
		{Address: "0011223344", Station: "hydro-1", Password: "03E8"}, {Address: "0012345678", Station: "hydro-2"}}})
	c := r.dial(t)
	for _, tc := range tests {
		before := r.refused(tc.kind)
		c.send(append(tc.bad(t), good(t)...))
		cf := c.confirm() // the first answer is the good frame's: nothing answers the bad one
		if cf.Function != sl651.FnTimed || !cf.Down {
			t.Fatalf("%s: answer %+v", tc.name, cf)
		}
		if got := r.refused(tc.kind); got != before+1 {
			t.Errorf("%s: refused{kind=%s} %v, want %v", tc.name, tc.kind, got, before+1)
		}
	}
	if n := testutil.ToFloat64(r.l.m.frames.WithLabelValues("32")); n != float64(len(tests)) {
		t.Errorf("frames taken %v, want %d", n, len(tests))
	}
}

// TestManyStationsAndHostileOnes connects hostile peers first — one that
// stops inside a header, one whose length field claims the longest body and
// sends a few bytes of it, one that floods bad frames, one that hangs up
// inside a frame — then forty stations at once, each sending five timed
// reports: every report is confirmed and stored while the silent hostile
// peers still hold their connections; the flood is cut off after
// MaxRefusals; the cut frame is counted as truncated.
func TestManyStationsAndHostileOnes(t *testing.T) {
	const n, reports = 40, 5
	var stations []config.SL651Station
	addr := func(i int) sl651.Address { return sl651.Address{0, 0, 0, byte(i / 10 << 4), bcd(i % 10)} }
	for i := range n {
		stations = append(stations, config.SL651Station{Address: addr(i).String(), Station: fmt.Sprintf("hydro-%d", i)})
	}
	r := startRig(t, config.SL651{Central: 1, Stations: stations})

	slow := r.dial(t)
	slow.send([]byte{0x7E, 0x7E, 0x01, 0x00})
	claim := r.dial(t)
	claim.send([]byte{0x7E, 0x7E, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x32, 0x0F, 0xFF, 0x02, 0x00, 0x01})
	flood := r.dial(t)
	bad := mustHex(t, timed32)
	bad[len(bad)-1] ^= 1
	go func() {
		for range 50 {
			if _, err := flood.c.Write(append([]byte("garbage"), bad...)); err != nil {
				return // closed by the centre: expected
			}
		}
	}()
	cut := r.dial(t)
	cut.send(mustHex(t, timed32)[:30])
	cut.c.(*net.TCPConn).CloseWrite()

	var wg sync.WaitGroup
	errs := make(chan error, n)
	base := time.Date(2026, 12, 2, 8, 0, 0, 0, cst)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", r.addr, wait)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * wait))
			rd := sl651.NewReader(c)
			for k := range reports {
				obs := base.Add(time.Duration(k) * 5 * time.Minute)
				f := report(t, sl651.HEX, sl651.FnTimed, 1, addr(i), 0, uint16(k+1), obs.Add(10*time.Second), obs,
					ev{0x39, float64(i) + float64(k)/10}, ev{0x26, float64(k)})
				if _, err := c.Write(encode(t, f)); err != nil {
					errs <- err
					return
				}
				cf, err := rd.Next()
				if err != nil || cf.Function != sl651.FnTimed || !cf.Down {
					errs <- fmt.Errorf("station %d report %d: %+v %v", i, k, cf, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := testutil.ToFloat64(r.l.m.readings); got != n*reports*2 {
		t.Errorf("readings %v, want %d", got, n*reports*2)
	}
	for i := range n {
		ser := r.series(t, fmt.Sprintf("hydro-%d", i), addr(i).String(), "water_level", base.Add(-time.Hour))
		if len(ser) != reports {
			t.Errorf("station %d: water_level %v", i, ser)
		}
	}
	// The silent peers still hold their connections (idle_timeout is a
	// minute): they held nothing but their own goroutine.
	for name, c := range map[string]*conn{"slow": slow, "claim": claim} {
		c.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: %v, want its connection still open", name, err)
		}
	}
	flood.c.SetReadDeadline(time.Now().Add(wait))
	if !flood.closed() {
		t.Error("flood: connection not closed")
	}
	if !cut.closed() {
		t.Error("cut: connection not closed")
	}
	if got := testutil.ToFloat64(r.l.m.closed.WithLabelValues("refusals")); got != 1 {
		t.Errorf("closed{refusals} %v, want 1", got)
	}
	if got := r.refused(sl651.KindTruncated); got != 1 {
		t.Errorf("refused{truncated} %v, want 1", got)
	}
}

// TestIdleTimeout: a peer that stops inside a frame is disconnected after
// idle_timeout, and counted.
func TestIdleTimeout(t *testing.T) {
	r := startRig(t, config.SL651{Central: 5, IdleTimeout: 200 * time.Millisecond,
		Stations: []config.SL651Station{{Address: "0011223344", Station: "hydro-1"}}})
	c := r.dial(t)
	c.send(mustHex(t, timed32)[:20])
	if !c.closed() {
		t.Fatal("connection not closed")
	}
	testutilWait(t, "closed{idle} counted", func() bool {
		return testutil.ToFloat64(r.l.m.closed.WithLabelValues("idle")) == 1
	})
}

// testutilWait waits (bounded) for cond: the server counts a close just
// after it closes, so the test may read the EOF first.
func testutilWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
