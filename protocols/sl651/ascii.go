package sl651

import (
	"fmt"
	"strings"
	"time"
)

// parseASCII reads an ASCII body (6.6.2): serial number as 4 hex digits,
// send time as 12 digits, then "identifier value " groups, each followed by
// one space, the last space included. The standard says no space follows
// the serial number and send time; a single one is accepted there too.
func parseASCII(r Report, f Frame, loc *time.Location) (Report, error) {
	s := string(f.Body)
	if len(s) < 16 {
		return r, fail(ErrBody, "%d characters, no serial number and send time", len(s))
	}
	sb, ok := hexDecode([]byte(s[:4]))
	if !ok {
		return r, fail(ErrBody, "serial number %q", s[:4])
	}
	r.Serial = uint16(sb[0])<<8 | uint16(sb[1])
	if !isDigits([]byte(s[4:16])) {
		return r, fail(ErrBCD, "send time %q", s[4:16])
	}
	tb, _ := hexDecode([]byte(s[4:16]))
	t, err := bcdTime(tb, loc)
	if err != nil {
		return r, err
	}
	r.SendTime = t
	rest := strings.TrimPrefix(s[16:], " ")
	if f.Down || f.Function == FnKeepAlive {
		if rest != "" {
			return r, fail(ErrBody, "%d characters after the send time", len(rest))
		}
		return r, nil
	}
	if !strings.HasSuffix(rest, " ") {
		return r, fail(ErrBody, "body does not end with a space")
	}
	toks := strings.Split(rest[:len(rest)-1], " ")
	w := walker{r: &r, loc: loc}
	next := func(i *int, what string) (string, error) {
		*i++
		if *i >= len(toks) || toks[*i] == "" {
			return "", fail(ErrBody, "no %s", what)
		}
		return toks[*i], nil
	}
	for i := 0; i < len(toks); i++ {
		tok := toks[i]
		var it Item
		var el Element
		switch {
		case tok == "":
			return r, fail(ErrBody, "two spaces")
		case tok == "ST":
			el = Elements[0xF1]
			a, err := next(&i, "station address")
			if err != nil {
				return r, err
			}
			it = Item{ID: 0xF1, Data: []byte(a)}
			if hasClass(f.Function) {
				c, err := next(&i, "classification code")
				if err != nil {
					return r, err
				}
				if len(c) != 1 {
					return r, fail(ErrBody, "classification code %q", c)
				}
				it.Class, it.HasClass = c[0], true
			}
		case tok == "TT":
			el = Elements[0xF0]
			v, err := next(&i, "observation time")
			if err != nil {
				return r, err
			}
			it = Item{ID: 0xF0, Data: []byte(v)}
		case strings.HasPrefix(tok, "DR") && len(tok) >= 3 && strings.ContainsRune("DHN", rune(tok[2])) && (len(tok) == 3 || len(tok) == 5):
			el = Elements[0x04]
			v := tok[2:]
			if len(tok) == 3 {
				nn, err := next(&i, "time step")
				if err != nil {
					return r, err
				}
				v += nn
			}
			it = Item{ID: 0x04, Data: []byte(v)}
			if f.Function == FnInterval || f.Function == FnQueryPeriod {
				if err := w.add(el, it, ASCII); err != nil {
					return r, err
				}
				r.Items = append(r.Items, it)
				series, err := asciiSeries(toks[i+1:])
				if err != nil {
					return r, err
				}
				for _, it := range series {
					if err := w.add(Elements[it.ID], it, ASCII); err != nil {
						return r, err
					}
					r.Items = append(r.Items, it)
				}
				return r, nil
			}
		default:
			var ok bool
			el, ok = ElementByCode(tok)
			if !ok {
				return r, fail(ErrElement, "identifier %q", tok)
			}
			if el.Form == FormRest || el.Form == FormAddress || el.Form == FormTime || el.Form == FormStep {
				return r, fail(ErrUnsupported, "%s in ASCII", tok)
			}
			v, err := next(&i, "value of "+tok)
			if err != nil {
				return r, err
			}
			it = Item{ID: el.ID, Data: []byte(v)}
		}
		if err := w.add(el, it, ASCII); err != nil {
			return r, err
		}
		r.Items = append(r.Items, it)
	}
	return r, nil
}

// Body writes r's serial number, send time (in loc) and items in enc, the
// inverse of ParseReport: a parsed report writes back the body it came
// from when that body was canonical.
func (r Report) Body(enc Encoding, loc *time.Location) ([]byte, error) {
	var dst []byte
	if enc == ASCII {
		dst = fmt.Appendf(dst, "%04X", r.Serial)
		for _, c := range appendBCDTime(nil, r.SendTime, loc, 6) {
			dst = fmt.Appendf(dst, "%02X", c)
		}
		for i := 0; i < len(r.Items); i++ {
			it := r.Items[i]
			el, ok := Elements[it.ID]
			if !ok {
				return nil, fail(ErrElement, "identifier %02X", it.ID)
			}
			if it.Series {
				j := i
				for j < len(r.Items) && r.Items[j].Series {
					j++
				}
				dst = appendASCIISeries(dst, r.Items[i:j])
				i = j - 1
				continue
			}
			switch it.ID {
			case 0xF1:
				dst = append(append(dst, "ST "...), it.Data...)
				if it.HasClass {
					dst = append(append(dst, ' '), it.Class)
				}
			case 0xF0:
				dst = append(append(dst, "TT "...), it.Data...)
			case 0x04:
				dst = append(append(dst, "DR"...), it.Data...)
			default:
				dst = append(append(append(dst, el.Code...), ' '), it.Data...)
			}
			dst = append(dst, ' ')
		}
		return dst, nil
	}
	dst = append(dst, byte(r.Serial>>8), byte(r.Serial))
	dst = appendBCDTime(dst, r.SendTime, loc, 6)
	for _, it := range r.Items {
		if it.ID > 0xFF {
			dst = append(dst, 0xFF)
		}
		dst = append(append(dst, byte(it.ID), it.Def), it.Data...)
		if it.HasClass {
			dst = append(dst, it.Class)
		}
	}
	return dst, nil
}

// Confirm returns the down-link confirmation (M2, 6.3.1.2) of the up-link
// frame up: the same station, central station, password, function and
// encoding, a body of serial number and send time, ended by end (EOT: the
// station may leave; ESC: it stays on line; ACK: more frames follow).
func Confirm(up Frame, serial uint16, sendTime time.Time, loc *time.Location, end byte) (Frame, error) {
	f := Frame{Encoding: up.Encoding, Down: true, Center: up.Center, Station: up.Station, Password: up.Password,
		Function: up.Function, Start: STX, End: end}
	body, err := Report{Serial: serial, SendTime: sendTime}.Body(up.Encoding, loc)
	if err != nil {
		return f, err
	}
	f.Body = body
	return f, f.check()
}

// asciiSeries reads the rest of an ASCII uniform-interval body (table 30):
// the identifiers of its elements, then the values grouped by time, one per
// element in each group, "M" for none. Each element becomes a Series item
// whose Data is its values in time order, separated by spaces.
func asciiSeries(toks []string) ([]Item, error) {
	var items []Item
	k := 0
	for ; k < len(toks); k++ {
		el, ok := ElementByCode(toks[k])
		if !ok {
			break
		}
		if el.Form != FormBCD {
			return nil, fail(ErrUnsupported, "%s in an ASCII series", toks[k])
		}
		items = append(items, Item{ID: el.ID, Series: true})
	}
	vals := toks[k:]
	if len(items) == 0 {
		if len(vals) > 0 {
			return nil, fail(ErrElement, "identifier %q", vals[0])
		}
		return nil, fail(ErrBody, "time step without elements")
	}
	if len(vals) == 0 || len(vals)%len(items) != 0 {
		return nil, fail(ErrBody, "%d values for %d elements", len(vals), len(items))
	}
	for i, v := range vals {
		it := &items[i%len(items)]
		if len(it.Data) > 0 {
			it.Data = append(it.Data, ' ')
		}
		it.Data = append(it.Data, v...)
	}
	return items, nil
}

// appendASCIISeries writes series items back: identifiers, then the values
// interleaved by time.
func appendASCIISeries(dst []byte, items []Item) []byte {
	cols := make([][]string, len(items))
	for i, it := range items {
		dst = append(append(dst, Elements[it.ID].Code...), ' ')
		cols[i] = strings.Split(string(it.Data), " ")
	}
	for row := 0; row < len(cols[0]); row++ {
		for _, c := range cols {
			if row < len(c) {
				dst = append(append(dst, c[row]...), ' ')
			}
		}
	}
	return dst
}
