package engine

import (
	"testing"
	"time"
)

func TestSight(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var s sight
	s.origin = at(100)
	s.blind(at(200), at(230))
	s.blind(at(220), at(240)) // overlaps: merged
	s.set(true, at(300))
	cases := []struct {
		from, now int
		want      time.Duration
	}{
		{0, 100, 0},                  // all before the start
		{0, 150, 50 * time.Second},   // from the start
		{150, 250, 60 * time.Second}, // 200–240 blind
		{210, 290, 50 * time.Second}, // inside a spell
		{250, 320, 50 * time.Second}, // blind now since 300
		{400, 320, 0},
	}
	for _, c := range cases {
		if got := s.heard(at(c.from), at(c.now)); got != c.want {
			t.Errorf("heard(%d, %d) = %v, want %v", c.from, c.now, got, c.want)
		}
	}
	s.set(false, at(330))
	if got := s.heard(at(250), at(400)); got != 120*time.Second {
		t.Errorf("after the spell ended: %v", got)
	}
	if got := s.blindShare(100*time.Second, at(340)); got < 0.2999 || got > 0.3001 {
		t.Errorf("blind share %v, want 0.3", got)
	}
	if got := s.blindShare(time.Hour, at(150)); got != 0 {
		t.Errorf("blind share before the start %v, want 0", got)
	}
	for i := 0; i < 2*maxSpells; i++ {
		s.blind(at(1000+3*i), at(1001+3*i))
	}
	if len(s.spells) != maxSpells {
		t.Errorf("%d spells kept, want %d", len(s.spells), maxSpells)
	}
}
