package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

const (
	// python is Debian's interpreter (the Makefile installs it), not
	// whatever a shell's PATH finds first.
	python = "/usr/bin/python3"
	peer   = "hj212peer.py"
	mn     = "010000A8900016F000169DC0" // appendix A's MN
	pw     = "100000"
	wait   = 30 * time.Second // one exchange with the peer, on a loaded machine
)

// upload is one upload as the peer's --frames file and its platform's
// output give it.
type upload struct {
	CN       string                       `json:"cn"`
	DataTime string                       `json:"datatime"`
	Values   map[string]map[string]string `json:"values"`
}

var uploads = []upload{
	{CN: hj212.CNRealtime, DataTime: "20261202083000", Values: map[string]map[string]string{
		"w01001": {"Rtd": "7.21", "Flag": "N"}, "w01009": {"Rtd": "6.35", "Flag": "N"}, "w21003": {"Rtd": "0.412", "Flag": "D"}}},
	{CN: hj212.CNRealtime, DataTime: "20261202083100", Values: map[string]map[string]string{
		"w01001": {"Rtd": "7.19", "Flag": "N"}, "w01009": {"Rtd": "2.80", "Flag": "C"}}},
	{CN: hj212.CNMinute, DataTime: "20261202083000", Values: map[string]map[string]string{
		"w01018": {"Avg": "22.4", "Min": "21.0", "Max": "23.9", "Flag": "N"}, "w00000": {"Cou": "12.5", "Flag": "N"}}},
}

func peerPath(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s: %v (make test installs python3)", python, err)
	}
	p, err := filepath.Abs(peer)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPeerLoggerToOurCodec: the independent peer, as a data logger, sends
// real-time and minute uploads asking for answers; our codec reads each
// from the TCP stream with the values, flags and times the peer sent, and
// the answers our codec writes (9014, the same QN) are what the peer waits
// for: every upload answered at the first try.
func TestPeerLoggerToOurCodec(t *testing.T) {
	script := peerPath(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan hj212.Packet, len(uploads))
	refused := make(chan error, 16)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := hj212.NewReader(c)
		for {
			p, err := r.ReadPacket()
			if err != nil {
				if hj212.Kind(err) == "" || strings.Contains(err.Error(), "EOF") {
					return
				}
				refused <- err
				continue
			}
			got <- p
			if p.Flag&hj212.FlagAck != 0 {
				ans := hj212.Packet{QN: p.QN, ST: hj212.STSystem, CN: hj212.CNDataResponse, PW: p.PW, MN: p.MN,
					Flag: hj212.MakeFlag(hj212.Version2017, false, false)}
				frame, err := ans.Frame()
				if err != nil {
					refused <- err
					return
				}
				if _, err := c.Write(frame); err != nil {
					return
				}
			}
		}
	}()

	frames := filepath.Join(t.TempDir(), "frames.json")
	data, _ := json.Marshal(uploads)
	if err := os.WriteFile(frames, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(uploads))*wait)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, script, "logger", "--connect", ln.Addr().String(),
		"--mn", mn, "--pw", pw, "--frames", frames, "--overtime", "20", "--recount", "0").CombinedOutput()
	if err != nil {
		t.Fatalf("peer logger: %v\n%s", err, out)
	}
	answeredFirstTry(t, out)
	for i, want := range uploads {
		var p hj212.Packet
		select {
		case p = <-got:
		case err := <-refused:
			t.Fatalf("our codec refused what the peer sent: %v", err)
		case <-time.After(wait):
			t.Fatalf("upload %d never read", i)
		}
		if p.CN != want.CN || p.MN != mn || p.PW != pw || p.ST != "32" || p.Flag != hj212.MakeFlag(hj212.Version2017, false, true) {
			t.Errorf("upload %d: read %+v", i, p)
		}
		f := p.CP.Factors()
		if dt, _ := p.CP.Get("DataTime"); dt != want.DataTime {
			t.Errorf("upload %d: DataTime %q, sent %q", i, dt, want.DataTime)
		}
		for code, fields := range want.Values {
			if !maps.Equal(f[code], fields) {
				t.Errorf("upload %d: %s read as %v, sent %v", i, code, f[code], fields)
			}
		}
	}
}

// TestOurCodecToPeerPlatform: our codec writes uploads to the independent
// peer playing the platform; it checks each (length, CRC, syntax), answers
// those asking with 9014 and the same QN, which our reader takes; a frame
// with a wrong CRC is refused by the peer and the next is still taken; a
// message too long for one packet, split by our codec (PNUM/PNO, a QN per
// part), arrives whole.
func TestOurCodecToPeerPlatform(t *testing.T) {
	script := peerPath(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	outFile := filepath.Join(t.TempDir(), "platform.jsonl")
	p := testenv.StartBinary(t, python, script, "platform", "--listen", addr, "--mn", mn, "--pw", pw, "--out", outFile)
	var c net.Conn
	testenv.Eventually(t, "the peer platform listening", wait, func() bool {
		if p.Exited() {
			t.Fatalf("the peer exited:\n%s", p.Logs())
		}
		var err error
		c, err = net.DialTimeout("tcp", addr, time.Second)
		return err == nil
	})
	defer c.Close()
	r := hj212.NewReader(c)
	t0 := time.Date(2026, 12, 2, 8, 30, 0, 0, hj212.Beijing)
	qn := 0
	nextQN := func() string { qn++; return hj212.QN(t0.Add(time.Duration(qn)*time.Millisecond), hj212.Beijing) }
	send := func(pk hj212.Packet) {
		t.Helper()
		frame, err := pk.Frame()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	answered := func(qn string) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(wait))
		a, err := r.ReadPacket()
		if err != nil || a.CN != hj212.CNDataResponse || a.QN != qn || a.ST != hj212.STSystem {
			t.Fatalf("answer to %s: %+v, %v", qn, a, err)
		}
	}
	upload := func(cn string, items ...hj212.Item) hj212.Packet {
		return hj212.Packet{QN: nextQN(), ST: "32", CN: cn, PW: pw, MN: mn, Flag: hj212.MakeFlag(hj212.Version2017, false, true),
			CP: append(hj212.CP{{{Name: "DataTime", Value: "20261202083000"}}}, items...)}
	}

	// 1: a real-time upload.
	first := upload(hj212.CNRealtime, hj212.FactorItem("w01001", "Rtd", "7.21", "Flag", "N"), hj212.FactorItem("w01009", "Rtd", "6.35", "Flag", "N"))
	send(first)
	answered(first.QN)
	// 2: the same frame with its CRC changed: refused, not answered.
	bad, _ := upload(hj212.CNRealtime, hj212.FactorItem("w01001", "Rtd", "7.30", "Flag", "N")).Frame()
	i := len(bad) - 3  // the CRC's last digit
	if bad[i] == '0' { // any other hex digit
		bad[i] = '1'
	} else {
		bad[i] = '0'
	}
	if _, err := c.Write(bad); err != nil {
		t.Fatal(err)
	}
	// 3: an hour upload of 60 factors: more than one packet.
	var items []hj212.Item
	want := map[string]map[string]string{}
	for k := range 60 {
		code := fmt.Sprintf("w9%04d", k)
		v := fmt.Sprintf("%d.%03d", k, k*7%1000)
		items = append(items, hj212.FactorItem(code, "Avg", v, "Min", v, "Max", v, "Flag", "N"))
		want[code] = map[string]string{"Avg": v, "Min": v, "Max": v, "Flag": "N"}
	}
	parts, err := hj212.Split(upload(hj212.CNHour, items...), 1)
	if err != nil || len(parts) < 2 {
		t.Fatalf("split into %d parts: %v", len(parts), err)
	}
	for i := range parts {
		parts[i].QN = nextQN() // each part answered on its own (appendix C.50)
		send(parts[i])
		answered(parts[i].QN)
	}
	// 4: another real-time upload after all that.
	last := upload(hj212.CNRealtime, hj212.FactorItem("w01001", "Rtd", "7.19", "Flag", "C"))
	send(last)
	answered(last.QN)

	// What the peer recorded, in order (each line is written before its
	// answer goes out).
	f, err := os.Open(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type record struct {
		Refused string                       `json:"refused"`
		QN      string                       `json:"qn"`
		CN      string                       `json:"cn"`
		Flag    int                          `json:"flag"`
		PNUM    *string                      `json:"pnum"`
		PNO     *string                      `json:"pno"`
		Data    map[string]map[string]string `json:"data"`
		Acked   bool                         `json:"acked"`
	}
	var recs []record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("peer output %q: %v", sc.Text(), err)
		}
		recs = append(recs, rec)
	}
	if len(recs) != 3+len(parts) {
		t.Fatalf("the peer recorded %d lines, want %d: %+v", len(recs), 3+len(parts), recs)
	}
	if recs[0].QN != first.QN || !recs[0].Acked || recs[0].Data["w01001"]["Rtd"] != "7.21" || recs[0].Data["w01009"]["Rtd"] != "6.35" || recs[0].Data[""]["DataTime"] != "20261202083000" {
		t.Errorf("first upload as the peer read it: %+v", recs[0])
	}
	if !strings.HasPrefix(recs[1].Refused, "crc") {
		t.Errorf("the frame with a wrong CRC: the peer says %+v, want refused for its CRC", recs[1])
	}
	joined := map[string]map[string]string{}
	for k, rec := range recs[2 : 2+len(parts)] {
		if rec.PNUM == nil || rec.PNO == nil || *rec.PNUM != fmt.Sprint(len(parts)) || *rec.PNO != fmt.Sprint(k+1) || rec.Flag != 7 || rec.CN != hj212.CNHour {
			t.Errorf("part %d as the peer read it: %+v", k+1, rec)
		}
		if rec.Data[""]["DataTime"] != "20261202083000" {
			t.Errorf("part %d has no DataTime of its own: %+v", k+1, rec.Data[""])
		}
		for code, fields := range rec.Data {
			if code != "" {
				joined[code] = fields
			}
		}
	}
	if !maps.EqualFunc(joined, want, maps.Equal) {
		t.Errorf("the split message arrived as %d factors, sent %d (or with other values)", len(joined), len(want))
	}
	if l := recs[len(recs)-1]; l.QN != last.QN || l.Data["w01001"]["Flag"] != "C" {
		t.Errorf("last upload as the peer read it: %+v", l)
	}
}
