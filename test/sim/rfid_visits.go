package sim

import (
	"math/rand/v2"
	"time"
)

// Visits walks tags past a reader in turn, as cattle pass through a race or
// staff badge at a door: each tag stays in the field for Stay, then the
// field is empty for Gap to 2×Gap (random, seeded), then the next tag comes.
// Step drives a TagReader; it is deterministic for a given Seed.
type Visits struct {
	Tags []string
	Stay time.Duration
	Gap  time.Duration
	Seed uint64

	rng  *rand.Rand
	i    int
	next time.Time // when the current stay or gap ends
	in   bool      // a tag is in the field
}

// Step presents or removes tags on r as time passes, then returns what r
// sent up to now.
func (v *Visits) Step(r *TagReader, now time.Time) []byte {
	if v.rng == nil {
		v.rng = rand.New(rand.NewPCG(v.Seed, 0x56495354))
		v.next = now.Add(v.gap())
	}
	var out []byte
	for len(v.Tags) > 0 && !now.Before(v.next) {
		if v.in {
			out = append(out, r.Read(v.next.Add(-time.Nanosecond))...) // the reads before it left
			r.Remove()
			v.in, v.i = false, (v.i+1)%len(v.Tags)
			v.next = v.next.Add(v.gap())
			continue
		}
		r.Present(v.Tags[v.i], v.next)
		v.in = true
		v.next = v.next.Add(v.Stay)
	}
	return append(out, r.Read(now)...)
}

func (v *Visits) gap() time.Duration {
	return v.Gap + time.Duration(v.rng.Int64N(int64(v.Gap)+1))
}
