package engine

import "time"

// sight remembers when the cloud could not hear the field — its broker
// connection lost, its intake stalled or failing, its process paused, and
// everything before it started — so that silence is judged only on the time
// it could hear: a device is silent when it has been quiet for its
// allowance of *heard* time. Spells are merged and bounded; one older than
// what any judgement looks back on is dropped (a device silent that long is
// silent however it is counted).
type sight struct {
	origin time.Time // the engine's start: nothing before it was heard
	spells []spell   // blind spells after origin, oldest first, disjoint
	since  time.Time // non-zero while blind now: since when
}

type spell struct{ from, to time.Time }

// maxSpells bounds the record; the oldest go first.
const maxSpells = 1024

// blind records that the cloud could not hear between from and to.
func (s *sight) blind(from, to time.Time) {
	if !to.After(from) {
		return
	}
	if n := len(s.spells); n > 0 && !from.After(s.spells[n-1].to) {
		if to.After(s.spells[n-1].to) {
			s.spells[n-1].to = to
		}
		return
	}
	if len(s.spells) == maxSpells {
		s.spells = append(s.spells[:0], s.spells[1:]...)
	}
	s.spells = append(s.spells, spell{from, to})
}

// set says whether the cloud is blind at now; a spell ends when it is not.
func (s *sight) set(blind bool, now time.Time) {
	switch {
	case blind && s.since.IsZero():
		s.since = now
	case !blind && !s.since.IsZero():
		s.blind(s.since, now)
		s.since = time.Time{}
	}
}

// heard is how much of [from, now] the cloud could hear: from is moved up
// to the start, and blind spells (the current one too) are taken out.
func (s *sight) heard(from, now time.Time) time.Duration {
	from = later(from, s.origin)
	if !now.After(from) {
		return 0
	}
	d := now.Sub(from)
	cut := func(a, b time.Time) {
		a, b = later(a, from), earlier(b, now)
		if b.After(a) {
			d -= b.Sub(a)
		}
	}
	for _, sp := range s.spells {
		cut(sp.from, sp.to)
	}
	if !s.since.IsZero() {
		cut(s.since, now)
	}
	return max(d, 0)
}

// blindShare is the share of the last span that the cloud could not hear.
func (s *sight) blindShare(span time.Duration, now time.Time) float64 {
	if span <= 0 {
		return 0
	}
	from := now.Add(-span)
	heard := s.heard(from, now)
	if from.Before(s.origin) { // before the start is not blindness of ours to report
		heard += s.origin.Sub(from)
	}
	return 1 - float64(min(heard, span))/float64(span)
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
