package telemetry

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestAck(t *testing.T) {
	a := Ack{Stream: "s1", First: 5, Last: 9, Through: 9}
	data, err := EncodeAck(a)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeAck(data); err != nil || got != a {
		t.Fatalf("DecodeAck = %+v, %v", got, err)
	}
	bad := []struct{ in, want string }{
		{`{"stream":"s1","first":5,"last":4}`, "empty"},
		{`{"stream":"s1","first":0,"last":4}`, "starts at 0"},
		{`{"stream":"","first":1,"last":4}`, "empty"},
		{`{"stream":"s1","first":1,"last":4,"extra":1}`, "unknown field"},
		{`{"stream":"s1","first":1,"last":4} {}`, "trailing"},
		{`not json`, "invalid character"},
		{`{"stream":"s1","first":-1,"last":4}`, "cannot unmarshal"},
		{strings.Repeat(" ", MaxAckBytes+1), "more than"},
	}
	for _, tc := range bad {
		if _, err := DecodeAck([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeAck(%.40q) error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestState(t *testing.T) {
	s := State{State: StateOnline, Version: "1.0", Site: "north", Location: &Location{Lat: 45.1, Lon: 126.5},
		Started: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Buffered: 3,
		Devices: []DeviceState{{ID: "soil-1", Profile: "renke/rs-ecth-n01", Interval: Duration(5 * time.Second)},
			{ID: "buoy", Mooring: &Mooring{Lat: 36.06, Lon: 120.38, RadiusM: 150}}}}
	data, err := EncodeState(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"interval":"5s"`) {
		t.Errorf("interval not human readable: %s", data)
	}
	got, err := DecodeState(data)
	if err != nil || got.Devices[0].Interval != s.Devices[0].Interval || got.Location.Lat != 45.1 || got.Devices[0].Mooring != nil ||
		got.Devices[1].Mooring == nil || *got.Devices[1].Mooring != *s.Devices[1].Mooring {
		t.Fatalf("DecodeState = %+v, %v", got, err)
	}
	if !strings.Contains(string(data), `"mooring":{"lat":36.06,"lon":120.38,"radius_m":150}`) || strings.Count(string(data), "mooring") != 1 {
		t.Errorf("mooring on the wire: %s", data)
	}
	bad := []struct{ in, want string }{
		{`{"state":"maybe"}`, "neither"},
		{`{"state":"online","location":{"lat":91,"lon":0}}`, "not on Earth"},
		{`{"state":"online","devices":[{"id":"a/b"}]}`, "not allowed"},
		{`{"state":"online","site":"x y"}`, "not allowed"},
		{`{"state":"online","devices":[{"id":"b","mooring":{"lat":36,"lon":120,"radius_m":0}}]}`, "not a mooring"},
		{`{"state":"online","devices":[{"id":"b","mooring":{"lat":36,"lon":200,"radius_m":50}}]}`, "not a mooring"},
		{`{"state":`, "unexpected EOF"},
	}
	for _, tc := range bad {
		if _, err := DecodeState([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeState(%q) error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestParseTopic(t *testing.T) {
	tests := []struct {
		topic, gw, kind string
		err             bool
	}{
		{"fieldwatch/v1/gw-1/up", "gw-1", "up", false},
		{"fieldwatch/v1/gw-1/state", "gw-1", "state", false},
		{"fieldwatch/v1/gw-1/ack", "gw-1", "ack", false},
		{"fieldwatch/v1/gw-1/cmd", "gw-1", "cmd", false},
		{"fieldwatch/v1/gw-1/reply", "gw-1", "reply", false},
		{"fieldwatch/v1/gw-1/release", "gw-1", "release", false},
		{"fieldwatch/v2/gw-1/up", "", "", true},
		{"fieldwatch/v1/gw-1/up/x", "", "", true},
		{"fieldwatch/v1/gw-1/down", "", "", true},
		{"fieldwatch/v1//up", "", "", true},
		{"fieldwatch/v1/gw+1/up", "", "", true},
	}
	for _, tc := range tests {
		gw, kind, err := ParseTopic(tc.topic)
		if (err != nil) != tc.err || gw != tc.gw || kind != tc.kind {
			t.Errorf("ParseTopic(%q) = %q, %q, %v", tc.topic, gw, kind, err)
		}
	}
	if UpTopic("g") != "fieldwatch/v1/g/up" || AckTopic("g") != "fieldwatch/v1/g/ack" || StateTopic("g") != "fieldwatch/v1/g/state" {
		t.Error("topic builders disagree with the documented layout")
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "gw-1", "soil_1.a", "A9"} {
		if err := CheckName("x", ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", ".a", "a b", "a/b", "a+", "a#", "é", strings.Repeat("a", 65)} {
		if err := CheckName("x", bad); err == nil {
			t.Errorf("CheckName(%q) accepted", bad)
		}
	}
}

func FuzzDecodeAck(f *testing.F) {
	f.Add([]byte(`{"stream":"s1","first":5,"last":9,"through":9}`))
	f.Add([]byte(`{"first":5,"last":9,"resync":true,"context":3735928559}`))
	f.Add([]byte(`{"stream":"s1","first":5,"last":9,"retry_ms":800}`))
	f.Add([]byte(`{"online":true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeAck(data)
		if err != nil {
			return
		}
		switch {
		case a.Online && a != (Ack{Online: true}):
			t.Fatalf("accepted an online notice carrying more %+v", a)
		case !a.Online && (a.First == 0 || a.Last < a.First):
			t.Fatalf("accepted a bad range %+v", a)
		case a.Refused() && a.Through != 0:
			t.Fatalf("accepted a refusal that acknowledges %+v", a)
		case a.RetryMS > MaxRetryMS || a.RetryMS != 0 && a.Resync:
			t.Fatalf("accepted a bad retry hint %+v", a)
		}
		// What was accepted encodes back to itself.
		again, err := EncodeAck(a)
		if err != nil {
			t.Fatalf("accepted %+v, which does not encode: %v", a, err)
		}
		if b, err := DecodeAck(again); err != nil || b != a {
			t.Fatalf("%s decoded to %+v, encoded to %s, decoded to %+v, %v", data, a, again, b, err)
		}
	})
}

func TestRetryAck(t *testing.T) {
	for _, a := range []Ack{{Stream: "s1", First: 5, Last: 9, RetryMS: 800}, {First: 5, Last: 9, RetryMS: MaxRetryMS}} {
		data, err := EncodeAck(a)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecodeAck(data); err != nil || got != a || !got.Refused() {
			t.Fatalf("%s decoded to %+v, %v", data, got, err)
		}
	}
	if data, _ := EncodeAck(Ack{Stream: "s1", First: 5, Last: 9, Through: 9}); strings.Contains(string(data), "retry") ||
		strings.Contains(string(data), "online") {
		t.Errorf("a plain ack carries the new fields: %s", data) // an older gateway would refuse it
	}
	bad := []struct{ in, want string }{
		{`{"stream":"s1","first":5,"last":9,"retry_ms":800,"through":9}`, "acknowledges nothing"},
		{`{"first":5,"last":9,"retry_ms":800,"resync":true}`, "does not go with a resync"},
		{`{"first":5,"last":9,"retry_ms":600001}`, "more than"},
		{`{"first":5,"last":9,"retry_ms":-1}`, "cannot unmarshal"},
		{`{"first":0,"last":9,"retry_ms":100}`, "starts at 0"},
		{`{"stream":"a/b","first":5,"last":9,"retry_ms":100}`, "not allowed"},
	}
	for _, tc := range bad {
		if _, err := DecodeAck([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeAck(%s) error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestOnlineAck(t *testing.T) {
	data, err := EncodeAck(Ack{Online: true})
	if err != nil || string(data) != `{"online":true}` {
		t.Fatalf("EncodeAck = %s, %v", data, err)
	}
	if a, err := DecodeAck(data); err != nil || !a.Online || a.Refused() {
		t.Fatalf("%s decoded to %+v, %v", data, a, err)
	}
	for _, bad := range []string{`{"online":true,"first":1,"last":1}`, `{"online":true,"stream":"s1"}`,
		`{"online":true,"retry_ms":5}`, `{"online":false}`, `{}`} {
		if _, err := DecodeAck([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestStateAccepts(t *testing.T) {
	data, err := EncodeState(State{State: StateOnline, Accepts: []string{AckRetry, AckOnline}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := DecodeState(data)
	if err != nil || !s.Accepting(AckRetry) || !s.Accepting(AckOnline) || s.Accepting("resend_from") {
		t.Fatalf("%s decoded to %+v, %v", data, s, err)
	}
	if old, err := DecodeState([]byte(`{"state":"online"}`)); err != nil || old.Accepting(AckRetry) {
		t.Fatalf("an older gateway's state: %+v, %v", old, err)
	}
	if s, err := DecodeState([]byte(`{"state":"online","accepts":["retry_ms","something_new"]}`)); err != nil ||
		!s.Accepting(AckRetry) {
		t.Fatalf("a name the cloud does not know is not ignored: %+v, %v", s, err)
	}
	bad := []struct{ in, want string }{
		{`{"state":"online","accepts":["a b"]}`, "not allowed"},
		{`{"state":"online","accepts":[""]}`, "accepts"},
		{`{"state":"online","accepts":"retry_ms"}`, "cannot unmarshal"},
		{`{"state":"online","accepts":[` + strings.Repeat(`"a",`, MaxAccepts) + `"a"]}`, "more than"},
	}
	for _, tc := range bad {
		if _, err := DecodeState([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeState(%.60s) error %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestStateInventory: the inventory's fields travel, are optional, and are
// refused field by field when wrong.
func TestStateInventory(t *testing.T) {
	off, maxErr := -0.0012, 0.25
	in := State{State: StateOnline, Arch: "armv7", Uptime: Duration(time.Hour), BufferBytes: 4096, BufferMaxBytes: 256 << 20,
		Clock: &ClockState{Quality: "ntp", OffsetS: &off, MaxErrorS: &maxErr}, Labels: map[string]string{"county": "laoshan", "kind": "buoy"}}
	data, err := EncodeState(in)
	if err != nil {
		t.Fatal(err)
	}
	s, err := DecodeState(data)
	if err != nil || s.Arch != "armv7" || s.Uptime != in.Uptime || s.BufferBytes != 4096 || s.BufferMaxBytes != 256<<20 ||
		s.Clock == nil || *s.Clock.OffsetS != off || *s.Clock.MaxErrorS != maxErr || s.Labels["county"] != "laoshan" {
		t.Fatalf("%s decoded to %+v, %v", data, s, err)
	}
	if old, err := DecodeState([]byte(`{"state":"online"}`)); err != nil || old.Clock != nil || old.Labels != nil || old.Arch != "" {
		t.Fatalf("an older gateway's state: %+v, %v", old, err)
	}
	many := map[string]string{}
	for i := range MaxLabels + 1 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	tooMany, _ := json.Marshal(State{State: StateOnline, Labels: many})
	for _, tc := range []struct{ in, want string }{
		{`{"state":"online","arch":"arm/v7"}`, "arch"},
		{`{"state":"online","uptime":"-1s"}`, "uptime"},
		{`{"state":"online","buffer_bytes":-1}`, "negative"},
		{`{"state":"online","buffer_max_bytes":-5}`, "negative"},
		{`{"state":"online","clock":{"quality":"sundial"}}`, "quality"},
		{`{"state":"online","clock":{"quality":"restamped"}}`, "quality"},
		{`{"state":"online","clock":{"quality":""}}`, "quality"},
		{`{"state":"online","clock":{"quality":"ntp","offset_s":1e12}}`, "offset"},
		{`{"state":"online","clock":{"quality":"ntp","max_error_s":-1}}`, "negative"},
		{`{"state":"online","labels":{"county":"崂山"}}`, "labels"},
		{`{"state":"online","labels":{"":"x"}}`, "labels"},
		{`{"state":"online","labels":{"county":""}}`, "labels"},
		{`{"state":"online","labels":{"a:b":"x"}}`, "labels"},
		{`{"state":"online","labels":["county"]}`, "cannot unmarshal"},
		{string(tooMany), "more than 16"},
	} {
		if _, err := DecodeState([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeState(%.70s) error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestCheckDisplayName(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"", true},
		{"北区农场 1 号站", true},
		{"Pond 7 (east)", true},
		{strings.Repeat("站", MaxDisplayNameRunes), true},
		{strings.Repeat("站", MaxDisplayNameRunes+1), false},
		{"a\nb", false},
		{"farm\u202enorth", false}, // right-to-left override
		{"zero\u200bwidth", false},
		{"   ", false},
		{"bad \xff utf-8", false},
	} {
		if err := CheckDisplayName(c.name); (err == nil) != c.ok {
			t.Errorf("CheckDisplayName(%q) = %v, want ok %v", c.name, err, c.ok)
		}
	}
}

func FuzzDecodeState(f *testing.F) {
	f.Add([]byte(`{"state":"online","site":"n","location":{"lat":1,"lon":2},"devices":[{"id":"d","profile":"p","interval":"5s"}]}`))
	f.Add([]byte(`{"state":"online","name":"北区农场 1 号站","site_name":"北区"}`))
	f.Add([]byte(`{"state":"online","accepts":["retry_ms","online"]}`))
	f.Add([]byte(`{"state":"online","heartbeat":"1m0s","devices":[{"id":"d","bus":"rs485","port":"/dev/ttyUSB0","last_read":"2026-12-02T06:00:00Z","health":"quarantined"}]}`))
	f.Add([]byte(`{"state":"online","arch":"armv7","uptime":"1h0m0s","buffer_bytes":4096,"buffer_max_bytes":268435456,` +
		`"clock":{"quality":"ntp","offset_s":-0.0012,"max_error_s":0.25},"labels":{"county":"laoshan","kind":"buoy"}}`))
	f.Add([]byte(`{"state":"online","clock":{"quality":"restamped"},"labels":{"a b":"c"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeState(data)
		if err != nil {
			return
		}
		if s.Uptime < 0 || s.BufferBytes < 0 || s.BufferMaxBytes < 0 || s.Arch != "" && CheckName("arch", s.Arch) != nil {
			t.Fatalf("accepted uptime %v, buffer %d of %d, arch %q", s.Uptime, s.BufferBytes, s.BufferMaxBytes, s.Arch)
		}
		if CheckLabels(s.Labels) != nil {
			t.Fatalf("accepted labels %q", s.Labels)
		}
		if c := s.Clock; c != nil {
			q, err := ParseClockQuality(c.Quality)
			if err != nil || q == ClockUnknown || q == ClockRestamped {
				t.Fatalf("accepted clock quality %q", c.Quality)
			}
			for _, v := range []*float64{c.OffsetS, c.MaxErrorS} {
				if v != nil && (math.IsNaN(*v) || math.Abs(*v) > MaxClockSeconds) {
					t.Fatalf("accepted clock %v", *v)
				}
			}
			if c.MaxErrorS != nil && *c.MaxErrorS < 0 {
				t.Fatalf("accepted max error %v", *c.MaxErrorS)
			}
		}
		if s.Heartbeat < 0 {
			t.Fatalf("accepted a negative heartbeat %v", s.Heartbeat)
		}
		if CheckDisplayName(s.Name) != nil || CheckDisplayName(s.SiteName) != nil {
			t.Fatalf("accepted names %q, %q", s.Name, s.SiteName)
		}
		for _, d := range s.Devices {
			if d.Bus != "" && CheckName("bus", d.Bus) != nil || len(d.Port) > MaxAttrLen {
				t.Fatalf("accepted device %+v", d)
			}
		}
		if len(s.Accepts) > MaxAccepts {
			t.Fatalf("accepted %d accepts", len(s.Accepts))
		}
		for _, a := range s.Accepts {
			if CheckName("accepts", a) != nil {
				t.Fatalf("accepted accepts %q", a)
			}
		}
	})
}

func TestResyncAck(t *testing.T) {
	data, err := EncodeAck(Ack{First: 5, Last: 9, Resync: true, Context: 0xdeadbeef})
	if err != nil {
		t.Fatal(err)
	}
	a, err := DecodeAck(data)
	if err != nil || !a.Resync || a.Context != 0xdeadbeef || a.Stream != "" {
		t.Fatalf("%s decoded to %+v, %v", data, a, err)
	}
	for _, bad := range []string{`{"first":5,"last":9}`, `{"first":5,"last":9,"resync":true,"through":9}`} {
		if _, err := DecodeAck([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestResendFromAck: resend_from travels only when set, so a gateway that
// refuses unknown fields never sees it from a cloud that does not ask.
func TestResendFromAck(t *testing.T) {
	plain, err := EncodeAck(Ack{Stream: "s1", First: 5, Last: 9, Through: 9})
	if err != nil || strings.Contains(string(plain), "resend_from") {
		t.Fatalf("an ack without a resend request: %s, %v", plain, err)
	}
	data, err := EncodeAck(Ack{Stream: "s1", First: 501, Last: 510, Through: 100, ResendFrom: 101})
	if err != nil || !strings.Contains(string(data), `"resend_from":101`) {
		t.Fatalf("%s, %v", data, err)
	}
	if a, err := DecodeAck(data); err != nil || a.ResendFrom != 101 {
		t.Fatalf("%s decoded to %+v, %v", data, a, err)
	}
	if _, err := DecodeAck([]byte(`{"first":5,"last":9,"resync":true,"resend_from":3}`)); err == nil {
		t.Error("a resync that asks for a resend accepted")
	}
}
