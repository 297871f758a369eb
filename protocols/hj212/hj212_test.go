package hj212

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCRCAppendixA(t *testing.T) {
	// HJ 212-2017 appendix A: the frame ends in 1C80 (its prose says 1C08,
	// a typo: the frame printed above it carries 1C80, and so computes).
	data := "QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
	if c := CRC16([]byte(data)); c != 0x1C80 {
		t.Fatalf("CRC16 = %04X, want 1C80", c)
	}
	if len(data) != 101 {
		t.Fatalf("length %d, want 101", len(data))
	}
}

// TestStandardFrames decodes every worked example and encodes it back to
// the same bytes.
func TestStandardFrames(t *testing.T) {
	for _, v := range standardFrames {
		t.Run(v.name, func(t *testing.T) {
			p, err := Decode([]byte(v.frame))
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Frame()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != v.frame {
				t.Fatalf("re-encoded\n%q\nwant\n%q", got, v.frame)
			}
		})
	}
}

func TestStandardFrameFields(t *testing.T) {
	get := func(name string) Packet {
		t.Helper()
		for _, v := range standardFrames {
			if v.name == name {
				p, err := Decode([]byte(v.frame))
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
		}
		t.Fatalf("no vector %s", name)
		return Packet{}
	}
	p := get("A")
	if p.QN != "20160801085857223" || p.ST != STSurfaceWaterSrc || p.CN != CNSetRtdInterval || p.PW != "100000" ||
		p.MN != "010000A8900016F000169DC0" || p.Flag != 5 || p.NoFlag || p.PNUM != 0 {
		t.Errorf("A: %+v", p)
	}
	if p.Flag.Version() != Version2017 || !p.Flag.Ack() || p.Flag.Split() {
		t.Errorf("A: Flag 5 is version 1, ack, no split")
	}
	if v, _ := p.CP.Get("RtdInterval"); v != "30" {
		t.Errorf("A: RtdInterval %q", v)
	}

	p = get("C14_2011")
	f := p.CP.Factors()
	want := map[string]map[string]string{
		"w01001": {"Rtd": "7.1", "Flag": "N"},
		"w01018": {"SampleTime": "20160801070000", "Rtd": "2.2", "Flag": "N", "EFlag": "A01"},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("C.14 factors %v", f)
	}
	dt, err := ParseTime(p.CP.Params()["DataTime"], Beijing)
	if err != nil || !dt.Equal(time.Date(2016, 8, 1, 8, 58, 57, 0, Beijing)) {
		t.Errorf("C.14 DataTime %v %v", dt, err)
	}
	qt, err := QNTime(p.QN, Beijing)
	if err != nil || !qt.Equal(time.Date(2016, 8, 1, 8, 58, 57, 223e6, Beijing)) || QN(qt, Beijing) != p.QN {
		t.Errorf("QN time %v %v", qt, err)
	}

	p = get("C16_2051")
	if f := p.CP.Factors()["w00000"]; f["Cou"] != "10.5" || f["Min"] != "16.4" || f["Avg"] != "17.5" || f["Max"] != "20.1" || f["Flag"] != "N" {
		t.Errorf("C.16 w00000 %v", f)
	}
	p = get("C14_9014")
	if p.ST != STSystem || p.CN != CNDataResponse || p.Flag.Ack() || len(p.CP) != 0 {
		t.Errorf("C.14 9014 %+v", p)
	}
	p = get("C20_2051req")
	if par := p.CP.Params(); par["BeginTime"] != "20160801084000" || par["EndTime"] != "20160801084000" {
		t.Errorf("C.20 %v", par)
	}
	p1, p2 := get("C50_part1"), get("C50_part2")
	if !p1.Flag.Split() || !p1.Flag.Ack() || p1.PNUM != 2 || p1.PNO != 1 || p2.PNO != 2 {
		t.Errorf("C.50 %+v %+v", p1, p2)
	}
	whole, err := Join([]Packet{p2, p1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if whole.CP.String() != get("C17_2061").CP.String() {
		t.Errorf("C.50 joined CP %s\nwant %s", whole.CP, get("C17_2061").CP)
	}
}

// Frames from public implementations' tests and documentation, as sent by
// loggers in the field: lowercase CRC digits, Flag=8, no QN or Flag
// (HJ/T 212-2005 style). Sources in docs/standards/hj212.md.
var wildFrames = []struct {
	name, frame string
	err         string // kind, "" when accepted
}{
	{"guocay-1", "##0317QN=20191012133710130;ST=22;CN=2011;PW=123456;MN=Y80110010000010;Flag=4;CP=&&DataTime=20191012133710;a21005-Rtd=0.00,a21005-Flag=N;a21004-Rtd=0.00,a21004-Flag=N;a21007-Rtd=0.033,a21007-Flag=N;a21006-Rtd=0.036,a21006-Flag=N;a21001-Rtd=25.40,a21001-Flag=N;a21003-Rtd=101.94,a21003-Flag=N;a21002-Rtd=49.20,a21002-Flag=N&&cc01\r\n", ""},
	{"guocay-5", "##0303QN=20191012133710130;ST=22;CN=2011;PW=123456;MN=Y80110010000010;Flag=4;CP=&&DataTime=20191012133710;a2106-Rtd=0.036,a2106-Flag=N;a2107-Rtd=0.033,a2107-Flag=N;a2104-Rtd=0.00,a2104-Flag=N;a2105-Rtd=0.00,a2105-Flag=N;a2102-Rtd=49.20,a2102-Flag=N;a2103-Rtd=101.94,a2103-Flag=N;a2101-Rtd=25.40,a2101-Flag=N&&71c0\r\n", ""},
	{"guocay-2-crc", "##0275QN=20190901181526940;ST=32;CN=2011;PW=123456;MN=Y80110010000010;Flag=4;CP=&&DataTime=20190901181500;a21005-Rtd=1.760,a21005-Flag=N;a21026-Rtd=106.400,a21026-Flag=N;O3-Rtd=63.400,O3-Flag=N;a21004-Rtd=63.200,a21004-Flag=N;a34002-Rtd=9,a34002-Flag=N;a34004-Rtd=4,a34004-Flag=N&&1100\r\n", KindCRC},
	{"alltobs-flag8", "##0435QN=20210301111100112;ST=21;CN=2011;PW=123456;MN=ZLDSZ20210127;Flag=8;CP=&&DataTime=20210301111100;w01001-Rtd=8.33,w01001-Flag=N;w01009-Rtd=10.15,w01009-Flag=N;w01010-Rtd=9.7,w01010-Flag=N;w01014-Rtd=1425,w01014-Flag=N;w01003-Rtd=13.10,w01003-Flag=N;w21011-Rtd=0,w21011-Flag=N;w21001-Rtd=3.563168,w21001-Flag=N;w21003-Rtd=0.09055002,w21003-Flag=N;w01019-Rtd=4.102818,w01019-Flag=N;w01008-Rtd=0,w01008-Flag=N;w23002-Rtd=0,w23002-Flag=N&&7d00\r\n", ""},
	{"alltobs-2005", "##0109ST=32;CN=2011;PW=123456;MN=NJGDKYYC202101q0001w0001;CP=&&DataTime=20210305003817000;ele01-Rtd=1;ele02-Rtd=0&&8c41\r\n", ""},
}

func TestWildFrames(t *testing.T) {
	for _, v := range wildFrames {
		t.Run(v.name, func(t *testing.T) {
			p, err := Decode([]byte(v.frame))
			if Kind(err) != v.err {
				t.Fatalf("err %v, want kind %q", err, v.err)
			}
			if err != nil {
				return
			}
			got, err := p.Frame()
			if err != nil {
				t.Fatal(err)
			}
			// The same frame, with the CRC's digits in uppercase.
			n := len(v.frame)
			want := v.frame[:n-6] + strings.ToUpper(v.frame[n-6:n-2]) + "\r\n"
			if string(got) != want {
				t.Fatalf("re-encoded\n%q\nwant\n%q", got, want)
			}
		})
	}
	p, _ := Decode([]byte(wildFrames[3].frame))
	if p.Flag.Version() != Version2025 || p.Flag.Ack() {
		t.Errorf("Flag=8: version %d", p.Flag.Version())
	}
	p, _ = Decode([]byte(wildFrames[4].frame))
	if !p.NoFlag || p.QN != "" {
		t.Errorf("2005 frame: %+v", p)
	}
}

func frame(data string) string {
	b, err := Pack([]byte(data))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestRefusals gives each malformed input and the one kind it is refused
// with.
func TestRefusals(t *testing.T) {
	good := standardFrames[0].frame
	const head = "QN=20160801085857223;ST=32;CN=2011;PW=123456;MN=010000A8900016F000169DC0;"
	cases := []struct{ name, in, kind string }{
		{"header", "#X" + good[2:], KindHeader},
		{"no header", "QN=1", KindHeader},
		{"length not digits", "##01a1" + good[6:], KindLength},
		{"length short", "##0100" + good[6:], KindLength},
		{"length long", "##0102" + good[6:], KindLength},
		{"oversize length", "##1025" + good[6:], KindOversize},
		{"oversize CP", frame("ST=32;CN=2011;PW=1;MN=A;CP=&&a=" + strings.Repeat("x", 944) + "&&"), KindOversize},
		{"truncated", good[:50], KindTruncated},
		{"truncated header", "#", KindTruncated},
		{"crc", strings.Replace(good, "RtdInterval=30", "RtdInterval=31", 1), KindCRC},
		{"crc not hex", good[:len(good)-6] + "1G80\r\n", KindCRC},
		{"tail", good[:len(good)-2] + "\n\n", KindTail},
		{"syntax empty item", frame(head + "Flag=4;CP=&&a=1;;b=2&&"), KindSyntax},
		{"syntax trailing ;", frame(head + "Flag=4;CP=&&a=1;&&"), KindSyntax},
		{"syntax no =", frame(head + "Flag=4;CP=&&a&&"), KindSyntax},
		{"syntax space", frame(head + "Flag=4;CP=&& &&"), KindSyntax},
		{"syntax unknown field", frame(head + "Foo=1;Flag=4;CP=&&&&"), KindSyntax},
		{"syntax twice", frame(head + "Flag=4;Flag=4;CP=&&&&"), KindSyntax},
		{"syntax control", frame(head + "Flag=4;CP=&&a=\t&&"), KindSyntax},
		{"syntax utf8", frame(head + "Flag=4;CP=&&a=\xff&&"), KindSyntax},
		{"syntax CP end", frame(head + "Flag=4;CP=&&a=1&"), KindSyntax},
		{"field QN", frame("QN=2016080108585722;ST=32;CN=2011;PW=123456;MN=A;Flag=4;CP=&&&&"), KindField},
		{"field ST", frame("ST=3;CN=2011;PW=123456;MN=A;Flag=4;CP=&&&&"), KindField},
		{"field CN", frame("ST=32;CN=20111;PW=123456;MN=A;Flag=4;CP=&&&&"), KindField},
		{"field PW", frame("ST=32;CN=2011;PW=1234567;MN=A;Flag=4;CP=&&&&"), KindField},
		{"field MN", frame("ST=32;CN=2011;PW=123456;MN=A-B;Flag=4;CP=&&&&"), KindField},
		{"field Flag", frame("ST=32;CN=2011;PW=123456;MN=A;Flag=256;CP=&&&&"), KindField},
		{"field PNO", frame("ST=32;CN=2011;PW=123456;MN=A;Flag=6;PNUM=2;PNO=0;CP=&&&&"), KindField},
		{"missing CN", frame("ST=32;PW=123456;MN=A;Flag=4;CP=&&&&"), KindMissing},
		{"missing CP", frame("ST=32;CN=2011;PW=123456;MN=A;Flag=4;"), KindMissing},
		{"split D without PNUM", frame("ST=32;CN=2011;PW=123456;MN=A;Flag=6;CP=&&&&"), KindSplit},
		{"split PNUM without D", frame("ST=32;CN=2011;PW=123456;MN=A;Flag=4;PNUM=2;PNO=1;CP=&&&&"), KindSplit},
		{"split PNO > PNUM", frame("ST=32;CN=2011;PW=123456;MN=A;Flag=6;PNUM=2;PNO=3;CP=&&&&"), KindSplit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.in))
			if Kind(err) != c.kind {
				t.Fatalf("err %v (kind %q), want kind %q", err, Kind(err), c.kind)
			}
			var sentinel error
			for s, k := range kindOf {
				if k == c.kind {
					sentinel = s
				}
			}
			if !errors.Is(err, sentinel) {
				t.Fatalf("%v does not wrap %v", err, sentinel)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 123e6, time.UTC)
	p := Packet{
		QN: QN(at, Beijing), ST: STSurfaceWater, CN: CNRealtime, PW: "123456", MN: "FW0001",
		Flag: MakeFlag(Version2017, false, true),
		CP: CP{
			{{"DataTime", FormatTime(at, Beijing)}},
			FactorItem("w01001", "Rtd", "7.12", "Flag", DataNormal),
			FactorItem("w01009", "Rtd", "8.3", "Flag", DataCalibration),
			FactorItem("w21003", "Rtd", "-0.05", "Flag", DataOverRange),
			{{"i12001-Info", "站点一号"}},
		},
	}
	if p.QN != "20261202180000123" {
		t.Fatalf("QN %s", p.QN)
	}
	b, err := p.Frame()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("round trip\n%+v\n%+v", p, q)
	}
	for _, bad := range []Packet{
		{ST: "32", CN: "2011", PW: "1", MN: "A", CP: CP{{{"a", "x;y"}}}},
		{ST: "32", CN: "2011", PW: "1", MN: "A", CP: CP{{}}},
		{ST: "32", CN: "2011", PW: "1", MN: "A", CP: CP{{{"a b", "1"}}}},
		{ST: "32", CN: "2011", PW: "1", MN: "", CP: nil},
		{ST: "32", CN: "2011", PW: "1", MN: "A", Flag: 6, PNUM: -1, PNO: -1},
	} {
		if _, err := bad.Encode(); err == nil {
			t.Errorf("Encode(%+v) accepted", bad)
		}
	}
}

func TestSplitJoin(t *testing.T) {
	p := Packet{QN: "20160801085857534", ST: "32", CN: CNHour, PW: "123456", MN: "010000A8900016F000169DC0",
		Flag: MakeFlag(Version2017, false, true), CP: CP{{{"DataTime", "20160801080000"}}}}
	for i := range 40 {
		code := "w" + strings.Repeat("0", 4) + string(rune('0'+i/10)) + string(rune('0'+i%10))
		p.CP = append(p.CP, FactorItem(code, "Cou", "63.0", "Min", "16.4", "Avg", "17.5", "Max", "20.1", "Flag", "N"))
	}
	parts, err := Split(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < 3 {
		t.Fatalf("%d parts", len(parts))
	}
	for i, q := range parts {
		b, err := q.Frame()
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		r, err := Decode(b)
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		if r.PNUM != len(parts) || r.PNO != i+1 || !r.Flag.Split() || !r.Flag.Ack() || r.Flag.Version() != Version2017 {
			t.Fatalf("part %d: %+v", i+1, r)
		}
		if v, _ := r.CP.Get("DataTime"); v != "20160801080000" {
			t.Fatalf("part %d has no DataTime", i+1)
		}
		if len(b)-Overhead > MaxData {
			t.Fatalf("part %d: %d bytes", i+1, len(b))
		}
	}
	whole, err := Join(parts, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(whole, p) {
		t.Fatalf("joined\n%+v\nwant\n%+v", whole, p)
	}
	// Fits: unchanged.
	small := p
	small.CP = small.CP[:2]
	if parts, err := Split(small, 1); err != nil || len(parts) != 1 || !reflect.DeepEqual(parts[0], small) {
		t.Fatalf("small: %v %v", parts, err)
	}
	// An item that fits nowhere.
	huge := p
	huge.CP = CP{{{"DataTime", "20160801080000"}}, {{"x", strings.Repeat("9", 1000)}}}
	if _, err := Split(huge, 1); Kind(err) != KindSplit {
		t.Fatalf("huge: %v", err)
	}
	if _, err := Join(parts[1:], 1); Kind(err) != KindSplit {
		t.Fatalf("missing part: %v", err)
	}
}

type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, eof
	}
	n := min(c.n, len(p), len(c.b))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

var eof = errorsEOF()

func TestReader(t *testing.T) {
	a := standardFrames[0].frame
	b := standardFrames[2].frame
	stream := "noise\r\n" + a + a[:40] + b + "##9999" + "xx\r\n" + strings.Replace(a, "=30", "=31", 1) + "#" + b + "##0101" + strings.Repeat("z", 2*MaxFrame) + "\r\n" + a + "##0101QN"
	// A bad length field costs only its line; "#" before a frame makes
	// "###…", a frame cut by the one starting at its second '#'.
	want := []string{KindGarbage, "A", KindTruncated, "C1_9011", KindOversize, KindCRC, KindTruncated, "C1_9011", KindOversize, KindGarbage, "A", KindTruncated}
	for _, n := range []int{1, 3, 64, 4096} {
		r := NewReader(&chunked{[]byte(stream), n})
		var got []string
		for range 100 {
			data, err := r.Next()
			if err == eof {
				break
			}
			if err != nil {
				if Kind(err) == "" {
					t.Fatalf("chunk %d: %v", n, err)
				}
				got = append(got, Kind(err))
				continue
			}
			name := "?"
			for _, v := range standardFrames {
				if u, _ := Unpack([]byte(v.frame)); bytes.Equal(u, data) {
					name = v.name
				}
			}
			got = append(got, name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("chunk %d:\n got %v\nwant %v", n, got, want)
		}
	}
}
