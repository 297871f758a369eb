package rfid

import (
	"cmp"
	"slices"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// visit is one stay of a tag at the reader: the reads no more than the
// dedup window apart.
type visit struct {
	key     string
	tagType string
	extra   []attr // attributes besides tag_type and state
	clock   telemetry.ClockQuality
	first   time.Time // first read: the event's Time
	last    time.Time
	count   int
	shown   bool // the "present" version went out
}

// attr is an event attribute.
type attr struct{ k, v string }

// visit returns the visit of the tag with id, for a read at now. A tag
// not tracked, or whose visit ended (its "gone" version goes to out), gets
// a fresh visit with count 0, which the caller fills (tagType, extra)
// before calling hit. It returns nil, counting StatOverflow, when a new
// tag would exceed MaxTracked.
func (d *Decoder) visit(id []byte, now time.Time, out *stream.Output) *visit {
	if v, ok := d.tags[string(id)]; ok {
		if now.Sub(v.last) <= d.cfg.Dedup {
			return v
		}
		d.end(v, out)
		*v = visit{key: v.key}
		return d.begin(v, now)
	}
	if len(d.tags) >= MaxTracked {
		d.expire(now, out) // visits that ended since the last Tick
	}
	if len(d.tags) >= MaxTracked {
		d.stats.Count(StatOverflow)
		return nil
	}
	v := &visit{key: string(id)}
	d.tags[v.key] = v
	return d.begin(v, now)
}

func (d *Decoder) begin(v *visit, now time.Time) *visit {
	v.first, v.last = now, now
	v.clock = telemetry.ClockUnknown
	if d.clock != nil {
		if c := d.clock(); c.Valid() {
			v.clock = c
		}
	}
	return v
}

// hit counts a read of v at now; the read that reaches min_reads emits
// the "present" version of the event.
func (d *Decoder) hit(v *visit, now time.Time, out *stream.Output) {
	v.count++
	v.last = now
	if !v.shown && v.count >= d.cfg.MinReads {
		v.shown = true
		out.Events = append(out.Events, d.event(v, StatePresent))
	}
}

// end emits the "gone" version of v's event, or counts StatUnconfirmed
// for a visit that never reached min_reads.
func (d *Decoder) end(v *visit, out *stream.Output) {
	if v.shown {
		out.Events = append(out.Events, d.event(v, StateGone))
	} else {
		d.stats.Count(StatUnconfirmed)
	}
}

// expire ends the visits of the tags unread for longer than the window,
// oldest first.
func (d *Decoder) expire(now time.Time, out *stream.Output) {
	var gone []*visit
	for _, v := range d.tags {
		if now.Sub(v.last) > d.cfg.Dedup {
			gone = append(gone, v)
		}
	}
	slices.SortFunc(gone, func(a, b *visit) int {
		return cmp.Or(a.first.Compare(b.first), cmp.Compare(a.key, b.key))
	})
	for _, v := range gone {
		d.end(v, out)
		delete(d.tags, v.key)
	}
}

// event is the tag event of v in state.
func (d *Decoder) event(v *visit, state string) telemetry.Event {
	attrs := make(map[string]string, 2+len(v.extra))
	for _, a := range v.extra {
		attrs[a.k] = a.v
	}
	attrs[AttrTagType] = v.tagType
	attrs[AttrState] = state
	dur := v.last.Sub(v.first).Seconds()
	if dur < 0 { // the clock was stepped back during the visit
		dur = 0
	}
	return telemetry.Event{
		Device: d.device,
		Kind:   telemetry.EventTag,
		Key:    v.key,
		Time:   v.first,
		Clock:  v.clock,
		Attrs:  attrs,
		Values: map[string]float64{ValueCount: float64(v.count), ValueDuration: dur},
	}
}
