package config

import (
	"strings"
	"testing"
	"time"
)

func TestUpdateWindow(t *testing.T) {
	at := func(hm string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", "2026-12-02 "+hm, time.FixedZone("CST", 8*3600))
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	f := func(window string, inside, outside []string) {
		t.Helper()
		w, err := ParseWindows(window)
		if err != nil {
			t.Fatalf("%q: %v", window, err)
		}
		for _, hm := range inside {
			if !w.Contains(at(hm)) {
				t.Errorf("%q: %s is outside; want inside", window, hm)
			}
		}
		for _, hm := range outside {
			if w.Contains(at(hm)) {
				t.Errorf("%q: %s is inside; want outside", window, hm)
			}
		}
	}
	f("", []string{"00:00", "12:00", "23:59"}, nil)
	f("02:00-05:00", []string{"02:00", "03:30", "04:59"}, []string{"01:59", "05:00", "14:00"})
	f("22:00-02:00", []string{"22:00", "23:59", "00:00", "01:59"}, []string{"02:00", "21:59", "12:00"})
	f("02:00-05:00, 13:00-13:30", []string{"02:30", "13:15"}, []string{"13:30", "06:00"})
	f("23:00-24:00", []string{"23:00", "23:59"}, []string{"00:00", "22:59"})
	// The gateway's local time, not UTC: 03:00 in Beijing is 19:00 UTC.
	w, _ := ParseWindows("02:00-05:00")
	if w.Contains(at("03:00").UTC()) {
		t.Error("the window was applied to UTC")
	}
	if got := w.String(); got != "02:00-05:00" {
		t.Errorf("String = %q", got)
	}

	c, err := Load("g.yaml", []byte(fleetBase+"fleet: {trusted_keys: ["+goodKey+"]}\nupdates: {window: \"02:00-05:00\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.UpdatesEnabled() || len(c.Updates.Windows) != 1 {
		t.Fatalf("updates %+v, enabled %v", c.Updates, c.UpdatesEnabled())
	}
	if c, _ = Load("g.yaml", []byte(fleetBase+"fleet: {updates: false, trusted_keys: ["+goodKey+"]}\n")); c.UpdatesEnabled() {
		t.Error("fleet.updates: false left updates on")
	}
	for _, tc := range []struct{ yaml, want string }{
		{"updates: {window: \"2-5\"}", `g.yaml:10: updates.window: "2-5": "2" is not a time of day HH:MM`},
		{"updates: {window: \"02:00\"}", `g.yaml:10: updates.window: "02:00" is not HH:MM-HH:MM`},
		{"updates: {window: \"02:00-02:00\"}", `g.yaml:10: updates.window: "02:00-02:00" is empty`},
		{"updates: {window: \"02:00-25:00\"}", `g.yaml:10: updates.window: "02:00-25:00": "25:00" is not a time of day`},
		{"updates: {windw: \"02:00-03:00\"}", `g.yaml:10: updates.windw: unknown field (did you mean "window"?)`},
		{"fleet: {updates: true}", "g.yaml:10: fleet.updates: binary updates need at least one fleet.trusted_keys entry"},
	} {
		_, err := Load("g.yaml", []byte(fleetBase+tc.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	// A remote config may set the window (a group's window comes with its
	// config), not fleet.updates.
	local, _ := Load("g.yaml", []byte(fleetBase+"fleet: {trusted_keys: ["+goodKey+"]}\n"))
	if rc, err := LoadRemote(local, "remote config v2", []byte(fleetBase+"updates: {window: \"01:00-02:00\"}\n")); err != nil ||
		rc.Updates.Windows.String() != "01:00-02:00" || !rc.UpdatesEnabled() {
		t.Fatalf("remote window: %v", err)
	}
}
