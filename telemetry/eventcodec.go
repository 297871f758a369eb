package telemetry

import (
	"encoding/binary"
	"math"
	"time"
)

// AppendEvents appends the events section of es (see docs/wire.md) to out:
//
//	uvarint count, then per event: device, kind, key (strings), varint Unix
//	nanoseconds, clock byte, uvarint n, n × (name, text), uvarint m,
//	m × (name, float64 little-endian)
//
// The edge buffer stores events in this form too.
func AppendEvents(out []byte, es []Event) []byte {
	out = binary.AppendUvarint(out, uint64(len(es)))
	for _, e := range es {
		out = appendString(out, e.Device)
		out = appendString(out, e.Kind)
		out = appendString(out, e.Key)
		out = binary.AppendVarint(out, e.Time.UnixNano())
		out = append(out, byte(e.Clock))
		out = binary.AppendUvarint(out, uint64(len(e.Attrs)))
		for _, k := range sortedKeys(e.Attrs) {
			out = appendString(out, k)
			out = appendString(out, e.Attrs[k])
		}
		out = binary.AppendUvarint(out, uint64(len(e.Values)))
		for _, k := range sortedKeys(e.Values) {
			out = appendString(out, k)
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(e.Values[k]))
		}
	}
	return out
}

// DecodeEvents decodes an events section holding exactly count events.
// Errors wrap ErrMalformed. The events are not validated.
func DecodeEvents(body []byte, count int) ([]Event, error) {
	r := &reader{b: body}
	es, err := decodeEvents(r, count)
	if err != nil {
		return nil, err
	}
	if len(r.b) != 0 {
		return nil, malformed("%d bytes left after %d events", len(r.b), count)
	}
	return es, nil
}

// decodeEvents consumes an events section of count events from r.
func decodeEvents(r *reader, count int) ([]Event, error) {
	n := r.uvarint("event count")
	if r.err != nil {
		return nil, r.err
	}
	if n != uint64(count) {
		return nil, malformed("%d events where %d were announced", n, count)
	}
	// Each event takes at least 3 string lengths, 1 time, 1 clock and 2
	// counts: 7 bytes.
	if len(r.b) < 7*count {
		return nil, malformed("%d bytes left for %d events", len(r.b), count)
	}
	es := make([]Event, count)
	for i := range es {
		e := &es[i]
		e.Device = r.string("event device")
		e.Kind = r.string("event kind")
		e.Key = r.string("event key")
		t := r.varint("event time")
		if r.err != nil {
			return nil, r.err
		}
		if len(r.b) < 1 {
			return nil, malformed("event %d is cut short", i)
		}
		e.Time = time.Unix(0, t).UTC()
		e.Clock = ClockQuality(r.b[0])
		r.b = r.b[1:]
		na := r.uvarint("attribute count")
		if r.err == nil && na > MaxEventAttrs {
			return nil, malformed("event %d has %d attributes", i, na)
		}
		for j := uint64(0); j < na && r.err == nil; j++ {
			if e.Attrs == nil {
				e.Attrs = make(map[string]string, na)
			}
			k := r.string("attribute name")
			e.Attrs[k] = r.string("attribute value")
		}
		nv := r.uvarint("value count")
		if r.err == nil && nv > MaxEventAttrs {
			return nil, malformed("event %d has %d values", i, nv)
		}
		for j := uint64(0); j < nv && r.err == nil; j++ {
			if e.Values == nil {
				e.Values = make(map[string]float64, nv)
			}
			k := r.string("value name")
			if r.err == nil && len(r.b) < 8 {
				return nil, malformed("event %d value %s is cut short", i, k)
			}
			if r.err == nil {
				e.Values[k] = math.Float64frombits(binary.LittleEndian.Uint64(r.b))
				r.b = r.b[8:]
			}
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	return es, nil
}
