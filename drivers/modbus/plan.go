package modbus

import "sort"

// MaxReadRegisters is the most registers one FC03/FC04 request may read.
const MaxReadRegisters = 125

// Request is one read that covers some of a device's fields.
type Request struct {
	Table   Table
	Address uint16
	Count   uint16
	Fields  []int // indexes into the fields given to Plan
}

// Plan covers fields with the fewest read requests: fields of one table are
// merged into one request while the request stays within maxRegs registers
// and the unread gap between two fields is at most maxGap registers (reading
// through a gap costs 2 bytes a register on the wire but saves a whole
// request/response turnaround). Fields must be normalized and checked.
func Plan(fields []Field, maxGap, maxRegs int) []Request {
	if maxRegs <= 0 || maxRegs > MaxReadRegisters {
		maxRegs = MaxReadRegisters
	}
	idx := make([]int, len(fields))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		fa, fb := &fields[idx[a]], &fields[idx[b]]
		if fa.Table != fb.Table {
			return fa.Table < fb.Table
		}
		return fa.Address < fb.Address
	})
	var reqs []Request
	for _, i := range idx {
		f := &fields[i]
		start, end := int(f.Address), int(f.Address)+f.Type.Words()
		if n := len(reqs); n > 0 {
			r := &reqs[n-1]
			rEnd := int(r.Address) + int(r.Count)
			if r.Table == f.Table && start-rEnd <= maxGap && max(end, rEnd)-int(r.Address) <= maxRegs {
				r.Count = uint16(max(end, rEnd) - int(r.Address))
				r.Fields = append(r.Fields, i)
				continue
			}
		}
		reqs = append(reqs, Request{Table: f.Table, Address: f.Address, Count: uint16(end - start), Fields: []int{i}})
	}
	return reqs
}

// Words returns the registers of field f out of the words read by r.
func (r *Request) Words(words []uint16, f *Field) []uint16 {
	off := int(f.Address) - int(r.Address)
	return words[off : off+f.Type.Words()]
}

// Value is one decoded field of a request.
type Value struct {
	Field int     // index into the fields given to Plan
	Value float64 // scaled
	Bad   string  // why the value is bad; empty when good
}

// Decode decodes the fields r covers from the words it read.
func (r *Request) Decode(fields []Field, words []uint16) []Value {
	out := make([]Value, 0, len(r.Fields))
	for _, i := range r.Fields {
		f := &fields[i]
		v, bad := f.Decode(r.Words(words, f))
		out = append(out, Value{Field: i, Value: v, Bad: bad})
	}
	return out
}
