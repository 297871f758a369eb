package hj212

// Split cuts p into numbered packets when its data segment would be longer
// than MaxData (or its CP longer than MaxCP); a packet that fits is returned
// alone, unchanged.
//
// Following HJ 212-2017 appendix C (tables C.49 and C.50), every part is a
// whole data segment: the first keep items of p.CP (DataTime, for data
// uploads) are repeated in every part, the other items are distributed in
// order without cutting any, each part has PNUM and PNO, and its Flag gets
// the D bit (A and the version are kept). The parts keep p.QN: the
// standard's example gives each part its own QN (…534, …535), which a caller
// that matches acknowledgements per part sets itself. An item too long for a
// part alone is refused (ErrSplit), as is a message of more than 9999 parts.
func Split(p Packet, keep int) ([]Packet, error) {
	if _, err := p.Encode(); err == nil {
		return []Packet{p}, nil
	} else if Kind(err) != KindOversize {
		return nil, err
	}
	if keep < 0 || keep > len(p.CP) {
		return nil, fail(ErrSplit, "keep %d of %d items", keep, len(p.CP))
	}
	if p.NoFlag {
		return nil, fail(ErrSplit, "a packet without Flag cannot say it is split")
	}
	head := p.CP[:keep]
	rest := p.CP[keep:]
	base := p
	base.Flag |= FlagSplit
	base.PNUM, base.PNO = 9999, 9999 // the widest, so every part fits once numbered
	var parts []Packet
	for len(rest) > 0 {
		part := base
		part.CP = append(CP(nil), head...)
		n := 0
		for n < len(rest) {
			part.CP = append(part.CP, rest[n])
			if _, err := part.Encode(); err != nil {
				part.CP = part.CP[:len(part.CP)-1]
				break
			}
			n++
		}
		if n == 0 {
			return nil, fail(ErrSplit, "item %d does not fit in a packet", len(p.CP)-len(rest))
		}
		rest = rest[n:]
		parts = append(parts, part)
	}
	if len(parts) > 9999 {
		return nil, fail(ErrSplit, "%d packets, at most 9999", len(parts))
	}
	for i := range parts {
		parts[i].PNUM, parts[i].PNO = len(parts), i+1
	}
	return parts, nil
}

// Join puts the parts of a split message back together: they must all be
// there (PNO 1…PNUM, each once, in any order), with the same ST, CN, PW and
// MN. The first keep items of each part after the first are dropped as
// repeats of the first part's. The result has the first part's QN, no PNUM
// or PNO and the D bit cleared; its length is not checked.
func Join(parts []Packet, keep int) (Packet, error) {
	if len(parts) == 0 {
		return Packet{}, fail(ErrSplit, "no parts")
	}
	byNo := make([]*Packet, parts[0].PNUM+1)
	for i := range parts {
		q := &parts[i]
		if q.PNUM != parts[0].PNUM || q.PNO < 1 || q.PNO > q.PNUM || byNo[q.PNO] != nil {
			return Packet{}, fail(ErrSplit, "part PNO %d of PNUM %d", q.PNO, q.PNUM)
		}
		if q.ST != parts[0].ST || q.CN != parts[0].CN || q.PW != parts[0].PW || q.MN != parts[0].MN {
			return Packet{}, fail(ErrSplit, "part %d is of another message", q.PNO)
		}
		if len(q.CP) < keep {
			return Packet{}, fail(ErrSplit, "part %d has %d items, fewer than %d", q.PNO, len(q.CP), keep)
		}
		byNo[q.PNO] = q
	}
	if len(parts) != parts[0].PNUM {
		return Packet{}, fail(ErrSplit, "%d of %d parts", len(parts), parts[0].PNUM)
	}
	out := *byNo[1]
	out.CP = append(CP(nil), byNo[1].CP...)
	for _, q := range byNo[2:] {
		out.CP = append(out.CP, q.CP[keep:]...)
	}
	out.QN = parts[0].QN
	out.PNUM, out.PNO = 0, 0
	out.Flag &^= FlagSplit
	return out, nil
}
