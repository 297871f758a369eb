package interop

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net"
	neturl "net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/protocols/sl651"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// beijing is the time the stations keep: the standard names no zone.
var beijing = time.FixedZone("CST", 8*3600)

// slPeer runs sl651peer.py with args and returns its output.
func slPeer(t *testing.T, args ...string) string {
	t.Helper()
	peerPath(t) // python is there
	script, err := filepath.Abs("sl651peer.py")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*wait)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, append([]string{script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("sl651peer %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestPeerReproducesPublishedFrames: the peer, written from the standard's
// text, writes the two worked HEX frames published with their CRCs (a test
// report 30 and a timed report 32, docs/standards/sl651.md) byte for byte
// from their values — so it is a fair judge of our codec.
func TestPeerReproducesPublishedFrames(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"30 test", []string{"--center", "1", "--station", "0012345678", "--password", "1234", "--function", "30", "--serial", "3",
			"--send-time", "591011154947", "--obs-time", "5910111549", "--elements", `[["PJ",0.5],["PT",0.5],["Z",0.127],["VT",11.15]]`},
			"7E7E010012345678123430002B020003591011154947F1F1001234567848F0F0591011154920190000052619000005392300000127381211150320FA"},
		{"32 timed", []string{"--center", "5", "--station", "0011223344", "--password", "03E8", "--function", "32", "--serial", "52",
			"--send-time", "170718110016", "--obs-time", "1707181100", "--elements", `[["PJ",4.0],["PT",4.0],["Z",10.49],["VT",10.99]]`},
			"7E7E05001122334403E832002B020034170718110016F1F1001122334448F0F01707181100201900004026190000403923000104903812109903A421"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := slPeer(t, append([]string{"encode"}, c.args...)...); got != c.want {
				t.Errorf("the peer writes\n%s\nthe published frame is\n%s", got, c.want)
			}
		})
	}
}

// TestPeerStationToOurCodec: the peer, as a telemetry station, sends a
// timed report with rainfall, water level, flow, water temperature
// (negative: ice) and supply voltage; our reader and report parser give
// every value at the observation time (Beijing time), and the confirmation
// our codec writes (same serial, ESC) is what the peer waits for: confirmed
// at the first try.
func TestPeerStationToOurCodec(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type got struct {
		frame  sl651.Frame
		report sl651.Report
		err    error
	}
	ch := make(chan got, 4)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * wait))
		f, err := sl651.NewReader(c).Next()
		if err != nil {
			ch <- got{err: err}
			return
		}
		rep, err := sl651.ParseReport(f, beijing)
		ch <- got{f, rep, err}
		if err != nil {
			return
		}
		conf, err := sl651.Confirm(f, rep.Serial, time.Now(), beijing, sl651.ESC)
		if err != nil {
			return
		}
		b, err := conf.Encode()
		if err != nil {
			return
		}
		c.Write(b)
	}()

	out := slPeer(t, "station", "--connect", ln.Addr().String(), "--center", "7", "--station", "0061040301", "--password", "ABCD",
		"--serial", "4242", "--send-time", "261202083015", "--obs-time", "2612020830", "--klass", "H",
		"--elements", `[["PJ",12.5],["PT",356.2],["Z",3.271],["Q",152.375],["C",-1.5],["VT",12.36]]`, "--timeout", "20")
	var peer struct {
		Sent      string `json:"sent"`
		Confirmed bool   `json:"confirmed"`
		Tries     int    `json:"tries"`
		End       string `json:"end"`
		Serial    int    `json:"serial"`
		Error     string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &peer); err != nil {
		t.Fatalf("peer said %q: %v", out, err)
	}
	var g got
	select {
	case g = <-ch:
	case <-time.After(wait):
		t.Fatal("our reader never returned a frame")
	}
	if g.err != nil {
		t.Fatalf("our codec refused the peer's frame %s: %v", peer.Sent, g.err)
	}
	if !peer.Confirmed || peer.Tries != 1 || peer.End != "ESC" || peer.Serial != 4242 {
		t.Errorf("the peer says %+v: want confirmed at the first try, ESC, serial 4242", peer)
	}
	f := g.frame
	if f.Encoding != sl651.HEX || f.Down || f.Center != 7 || hex.EncodeToString(f.Station[:]) != "0061040301" || f.Password != 0xABCD || f.Function != sl651.FnTimed {
		t.Errorf("frame header %+v", f)
	}
	at := time.Date(2026, 12, 2, 8, 30, 0, 0, beijing)
	if g.report.Serial != 4242 || !g.report.SendTime.Equal(time.Date(2026, 12, 2, 8, 30, 15, 0, beijing)) {
		t.Errorf("report serial %d sent %s", g.report.Serial, g.report.SendTime)
	}
	want := map[string]float64{"PJ": 12.5, "PT": 356.2, "Z": 3.271, "Q": 152.375, "C": -1.5, "VT": 12.36}
	seen := map[string]bool{}
	for _, v := range g.report.Values {
		w, ok := want[v.Element.Code]
		if !ok {
			t.Errorf("unexpected value %+v", v)
			continue
		}
		seen[v.Element.Code] = true
		if !v.Valid || math.Abs(v.Value-w) > 1e-9 || !v.Time.Equal(at) || hex.EncodeToString(v.Station[:]) != "0061040301" || v.Class != 'H' {
			t.Errorf("%s: read %+v, sent %v at %s", v.Element.Code, v, w, at)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("read %d of the %d elements sent: %v", len(seen), len(want), seen)
	}
}

// TestPeerStationToOurCloud: the peer station reports to the real cloud's
// SL 651 central station; it is confirmed at the first try, and the API
// has every element under its metric and unit at the observation time.
// The same frame sent again (a station that missed the confirmation) is
// confirmed again and stored once.
func TestPeerStationToOurCloud(t *testing.T) {
	sl := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	http := startCloud(t, fmt.Sprintf(`sl651:
  listen: %q
  central: 7
  stations:
    - address: "0061040301"
      station: hydro-peer
      site: west-river
      name: 西河水文站
      password: "ABCD"
`, sl))
	obs := time.Now().In(beijing).Truncate(time.Minute).Add(-2 * time.Minute)
	args := []string{"station", "--connect", sl, "--center", "7", "--station", "0061040301", "--password", "ABCD",
		"--serial", "77", "--send-time", obs.Add(20 * time.Second).Format("060102150405"), "--obs-time", obs.Format("0601021504"),
		"--klass", "H", "--elements", `[["PT",356.2],["Z",3.271],["Q",152.375],["C",-1.5],["VT",12.36]]`, "--timeout", "20"}
	for try := range 2 {
		var peer struct {
			Confirmed bool   `json:"confirmed"`
			Tries     int    `json:"tries"`
			End       string `json:"end"`
			Serial    int    `json:"serial"`
		}
		if out := slPeer(t, args...); json.Unmarshal([]byte(out), &peer) != nil || !peer.Confirmed || peer.Tries != 1 || peer.Serial != 77 {
			t.Fatalf("send %d: the peer says %s", try+1, out)
		}
	}
	want := map[string]string{"rainfall": "356.2 mm", "water_level": "3.271 m", "flow": "152.375 m³/s", "water_temperature": "-1.5 °C",
		"supply_voltage": "12.36 V"}
	type sample struct {
		Metric, Unit string
		Value        *float64
		Time         time.Time
	}
	var latest []sample
	if err := testenv.GetJSON("http://"+http+"/api/v1/latest?station=hydro-peer", &latest); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range latest {
		if s.Value == nil || !s.Time.Equal(obs) {
			t.Errorf("%s: %v at %s, observed at %s", s.Metric, s.Value, s.Time, obs)
			continue
		}
		got[s.Metric] = fmt.Sprintf("%g %s", *s.Value, s.Unit)
	}
	t.Logf("the API has %v", got)
	for m, w := range want {
		if got[m] != w {
			t.Errorf("%s: the API has %q, the peer sent %s", m, got[m], w)
		}
	}
	// Stored once though sent twice.
	var series struct {
		Samples []sample `json:"samples"`
	}
	q := neturl.Values{"station": {"hydro-peer"}, "device": {"0061040301"}, "metric": {"water_level"},
		"from": {obs.Add(-time.Hour).Format(time.RFC3339)}, "to": {obs.Add(time.Minute).Format(time.RFC3339)}}
	if err := testenv.GetJSON("http://"+http+"/api/v1/series?"+q.Encode(), &series); err != nil {
		t.Fatal(err)
	}
	if len(series.Samples) != 1 {
		t.Errorf("water_level stored %d times, sent once (twice on the wire)", len(series.Samples))
	}
}
