package rfid

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	cases := []struct {
		name string
		in   Config
		want Config
		bad  []string // fields reported by Check
	}{
		{name: "defaults", in: Config{Protocol: EM4100RDM6300},
			want: Config{Protocol: EM4100RDM6300, Dedup: 2 * time.Second, MinReads: 1}},
		{name: "pn532 defaults", in: Config{Protocol: PN532},
			want: Config{Protocol: PN532, Dedup: 2 * time.Second, MinReads: 1, Timeout: 500 * time.Millisecond}},
		{name: "set values kept", in: Config{Protocol: FDXBText, Dedup: 5 * time.Second, MinReads: 2},
			want: Config{Protocol: FDXBText, Dedup: 5 * time.Second, MinReads: 2}},
		{name: "unknown protocol", in: Config{Protocol: "em4200"},
			want: Config{Protocol: "em4200", Dedup: 2 * time.Second, MinReads: 1}, bad: []string{"protocol"}},
		{name: "empty protocol", in: Config{},
			want: Config{Dedup: 2 * time.Second, MinReads: 1}, bad: []string{"protocol"}},
		{name: "negative values", in: Config{Protocol: Wiegand26Text, Dedup: -time.Second, MinReads: -1},
			want: Config{Protocol: Wiegand26Text, Dedup: -time.Second, MinReads: -1}, bad: []string{"dedup", "min_reads"}},
		{name: "pn532 options on a passive reader", in: Config{Protocol: EM4100ID12LA, PollInterval: time.Second, Timeout: time.Second},
			want: Config{Protocol: EM4100ID12LA, Dedup: 2 * time.Second, MinReads: 1, PollInterval: time.Second, Timeout: time.Second},
			bad:  []string{"poll_interval", "timeout"}},
		{name: "pn532 window not above the poll interval", in: Config{Protocol: PN532, PollInterval: time.Second},
			want: Config{Protocol: PN532, Dedup: 2 * time.Second, MinReads: 1, PollInterval: time.Second, Timeout: 500 * time.Millisecond},
			bad:  []string{"dedup"}},
		{name: "pn532 window not above the timeout", in: Config{Protocol: PN532, Timeout: time.Second},
			want: Config{Protocol: PN532, Dedup: 2 * time.Second, MinReads: 1, Timeout: time.Second},
			bad:  []string{"dedup"}},
		{name: "pn532 window above poll interval", in: Config{Protocol: PN532, PollInterval: time.Second, Dedup: 2100 * time.Millisecond},
			want: Config{Protocol: PN532, Dedup: 2100 * time.Millisecond, MinReads: 1, PollInterval: time.Second, Timeout: 500 * time.Millisecond}},
		{name: "pn532 timeout too long", in: Config{Protocol: PN532, Timeout: time.Hour},
			want: Config{Protocol: PN532, Dedup: 2 * time.Second, MinReads: 1, Timeout: time.Hour}, bad: []string{"timeout"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.in
			got.Normalize()
			if got != c.want {
				t.Errorf("unexpected normalized config; got %+v; want %+v", got, c.want)
			}
			var fields []string
			for f, msg := range got.Check() {
				if msg == "" {
					t.Errorf("empty message for %s", f)
				}
				fields = append(fields, f)
			}
			slices.Sort(fields)
			if !reflect.DeepEqual(fields, c.bad) {
				t.Errorf("unexpected problems; got %v; want %v (%v)", fields, c.bad, got.Check())
			}
		})
	}
}

func TestUnknownProtocolRefuses(t *testing.T) {
	d := New(Config{Protocol: "nope"}, testDevice, nil)
	out := d.Feed([]byte("\x0214008EC793CE\x03"), t0)
	out.Add(d.Tick(t0))
	out.Add(d.Start(t0))
	if !out.Empty() || d.Stats().Errors[StatConfig] != 1 {
		t.Errorf("unexpected output %+v, stats %+v", out, d.Stats())
	}
}
