package engine

import (
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
)

func TestSpansOfAndUnite(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2026, 11, 21, 0, m, 0, 0, time.UTC) }
	tr := func(m int, to alert.State) alert.Transition { return alert.Transition{Rule: "r", To: to, Time: at(m)} }
	// bf is a backfilled transition from one state to another.
	bf := func(m int, from, to alert.State) alert.Transition {
		return alert.Transition{Rule: "r", From: from, To: to, Time: at(m), Backfilled: true}
	}
	type span struct {
		start, end int // minutes; end -1: open
	}
	for _, c := range []struct {
		name       string
		live, late []alert.Transition
		want       []span
		history    []alert.Transition // when set, split into live and late first
	}{
		{"pending that never fired is no span", []alert.Transition{tr(1, alert.Pending), tr(3, alert.Inactive)}, nil, nil, nil},
		{"fired and resolved", []alert.Transition{tr(1, alert.Pending), tr(2, alert.Firing), tr(5, alert.Firing),
			tr(9, alert.Resolved)}, nil, []span{{2, 9}}, nil},
		{"still firing is open", []alert.Transition{tr(2, alert.Firing), tr(4, alert.Resolved), tr(6, alert.Firing)}, nil,
			[]span{{2, 4}, {6, -1}}, nil},
		{"late data inside a live span counts once", []alert.Transition{tr(2, alert.Firing), tr(20, alert.Resolved)},
			[]alert.Transition{tr(5, alert.Firing), tr(8, alert.Resolved)}, []span{{2, 20}}, nil},
		{"late span overlapping the start extends it", []alert.Transition{tr(4, alert.Firing), tr(20, alert.Resolved)},
			[]alert.Transition{tr(1, alert.Firing), tr(6, alert.Resolved)}, []span{{1, 20}}, nil},
		{"late span left open ends at its last transition", nil,
			[]alert.Transition{tr(1, alert.Pending), tr(3, alert.Firing), tr(7, alert.Firing)}, []span{{3, 7}}, nil},
		{"late span inside an open live one", []alert.Transition{tr(2, alert.Firing)},
			[]alert.Transition{tr(5, alert.Firing), tr(8, alert.Resolved)}, []span{{2, -1}}, nil},
		{"a backlog judged by the alert itself is its own timeline", nil, nil, []span{{1, 4}, {6, -1}},
			[]alert.Transition{bf(1, alert.Inactive, alert.Firing), bf(4, alert.Firing, alert.Resolved),
				bf(6, alert.Resolved, alert.Firing)}},
		{"a shadow's resolution does not end the alert's firing", nil, nil, []span{{0, 20}},
			[]alert.Transition{tr(0, alert.Firing), bf(5, alert.Inactive, alert.Firing), bf(8, alert.Firing, alert.Resolved),
				{Rule: "r", From: alert.Firing, To: alert.Resolved, Time: at(20)}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.history != nil {
				c.live, c.late = split(c.history, false)
			}
			got := unite(append(spansOf(c.live, true), spansOf(c.late, false)...))
			if len(got) != len(c.want) {
				t.Fatalf("spans %+v, want %v", got, c.want)
			}
			for i, w := range c.want {
				g := got[i]
				if !g.Start.Equal(at(w.start)) || (w.end < 0) != g.Open || (w.end >= 0 && !g.End.Equal(at(w.end))) {
					t.Fatalf("span %d = %+v, want %v", i, g, w)
				}
			}
		})
	}
}
