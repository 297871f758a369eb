package interop

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestOurGatewayToPeerPlatform: the real gateway binary, as an HJ 212 data
// logger, reports an air sensor to the independent peer platform, which
// leaves the first two uploads that ask for an answer unanswered: the
// gateway sends the first frame again with the same QN until it is
// answered (OverTime, ReCount), then goes on in order; the peer decodes
// every upload (our CRC, length and syntax as it reads the standard), with
// the factor codes, one decimal (N3.1) and the flags, Flag 5 (2017, A),
// DataTimes increasing, none sent twice once answered.
func TestOurGatewayToPeerPlatform(t *testing.T) {
	addr, lines := startPeerPlatform(t, "--drop-acks", "2")
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the peer platform stopped")
			}
			return l
		case <-time.After(wait):
			t.Fatal("nothing from the peer platform")
		}
		return ""
	}

	srv := sim.NewServer(nil)
	srv.AddUnit(10, &sim.AirSensor{Env: &sim.Environment{Seed: 5}})
	simAddr := sim.Listen(t, srv)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`gateway: {id: roof-gw, clock: ntp}
uplink: {brokers: ["tcp://127.0.0.1:%d"]}
buffer: {dir: %s, fsync: "off"}
http: {listen: ""}
buses:
  - name: rs485
    type: tcp
    address: %s
    devices:
      - {id: air-1, profile: renke/rs-ws-n01-8, unit: 10, interval: 1s}
hj212_uplinks:
  - {address: "%s", mn: %s, pw: "%s", st: "22", ack_timeout: 1s, retries: 3}
`, testenv.FreePort(t), filepath.Join(dir, "buf"), simAddr, addr, mn, pw)), 0o600)
	testenv.StartBinary(t, filepath.Join(bins, "fieldwatch-gateway"), "run", "-c", cfg)

	type rec struct {
		QN    string                       `json:"qn"`
		ST    string                       `json:"st"`
		CN    string                       `json:"cn"`
		Flag  int                          `json:"flag"`
		Data  map[string]map[string]string `json:"data"`
		Acked bool                         `json:"acked"`
		Ref   string                       `json:"refused"`
	}
	var recs []rec
	for answered := 0; answered < 4; {
		var r rec
		if l := next(); json.Unmarshal([]byte(l), &r) != nil || r.Ref != "" {
			t.Fatalf("the peer refused or could not read: %s", l)
		}
		recs = append(recs, r)
		if r.Acked {
			answered++
		}
	}
	// The first frame three times (two unanswered, then answered), with
	// one QN; then each frame once.
	if len(recs) != 6 || recs[0].QN != recs[1].QN || recs[1].QN != recs[2].QN || recs[0].Acked || recs[1].Acked ||
		!recs[2].Acked {
		t.Fatalf("uploads %+v: want the first sent three times with one QN, answered the third time", recs)
	}
	last := ""
	for i, r := range recs[2:] {
		dt := r.Data[""]["DataTime"]
		if r.CN != "2011" || r.ST != "22" || r.Flag != 5 || dt <= last || !r.Acked {
			t.Errorf("upload %d: %+v", i+2, r)
		}
		last = dt
		for _, code := range []string{"a01001", "a01002"} {
			f := r.Data[code]
			v, err := strconv.ParseFloat(f["Rtd"], 64)
			if err != nil || f["Flag"] != "N" || !strings.Contains(f["Rtd"], ".") || len(f["Rtd"])-strings.Index(f["Rtd"], ".") != 2 || v < -50 || v > 100 {
				t.Errorf("upload %d: %s = %v: want a value with one decimal, flag N", i+2, code, f)
			}
		}
	}
}

// startPeerPlatform runs the peer as a platform for mn and pw on a free
// loopback port, with the further arguments args, and returns its address
// and the lines it writes (one per upload).
func startPeerPlatform(t *testing.T, args ...string) (string, <-chan string) {
	t.Helper()
	peer := exec.Command(python, append([]string{peerPath(t), "platform", "--listen", "127.0.0.1:0", "--mn", mn, "--pw", pw},
		args...)...)
	stdout, err := peer.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	peer.Stderr = os.Stderr
	if err := peer.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Process.Kill(); peer.Wait() })
	lines := make(chan string, 10000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		addr, ok := strings.CutPrefix(l, "listening ")
		if !ok {
			t.Fatalf("peer: %q", l)
		}
		return addr, lines
	case <-time.After(wait):
		t.Fatal("the peer platform did not start")
	}
	return "", nil
}
