package uplink

import "sort"

// ranges is a set of sequence ranges the cloud has acknowledged beyond the
// buffer's trim mark, kept merged and sorted. Live batches are acked while
// the backlog before them is still draining; once the backlog catches up
// the whole run is trimmed at once.
type ranges []span

type span struct{ first, last uint64 }

// add marks first … last acknowledged.
func (r *ranges) add(first, last uint64) {
	if last < first {
		return
	}
	s := *r
	i := sort.Search(len(s), func(i int) bool { return s[i].last+1 >= first })
	j := i
	for j < len(s) && s[j].first <= last+1 {
		first, last = min(first, s[j].first), max(last, s[j].last)
		j++
	}
	s = append(s[:i], append([]span{{first, last}}, s[j:]...)...)
	*r = s
}

// covered reports whether seq is acknowledged, and if so where its range ends.
func (r ranges) covered(seq uint64) (bool, uint64) {
	i := sort.Search(len(r), func(i int) bool { return r[i].last >= seq })
	if i < len(r) && r[i].first <= seq {
		return true, r[i].last
	}
	return false, 0
}

// nextStart is the first acknowledged sequence after seq, or 0 if none.
func (r ranges) nextStart(seq uint64) uint64 {
	i := sort.Search(len(r), func(i int) bool { return r[i].first > seq })
	if i < len(r) {
		return r[i].first
	}
	return 0
}

// trimBelow forgets ranges at or below through (the buffer trimmed them).
func (r *ranges) trimBelow(through uint64) {
	s := *r
	n := 0
	for _, sp := range s {
		if sp.last <= through {
			continue
		}
		sp.first = max(sp.first, through+1)
		s[n] = sp
		n++
	}
	*r = s[:n]
}

// count is how many sequences the set holds.
func (r ranges) count() uint64 {
	var n uint64
	for _, sp := range r {
		n += sp.last - sp.first + 1
	}
	return n
}
