package sl651

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Item is one information group (信息组) of a report body, as sent.
type Item struct {
	ID uint16 // identifier guide byte, or FFxx
	// Def is the data definition byte (HEX): bytes<<3 | decimals, or the
	// fixed F0/F1/F2/F3 of the special identifiers; 0 in ASCII.
	Def byte
	// Data is the data as sent: bytes in HEX (for a uniform-interval series,
	// every value one after the other), the value's characters in ASCII.
	Data []byte
	// Class is the station classification code (appendix A) after an F1
	// address in data reports; HasClass tells whether there is one.
	Class    byte
	HasClass bool
	// Series marks an element of an ASCII uniform-interval report, whose
	// values are written interleaved with the other elements' by time; its
	// Data is its own values in time order, separated by spaces.
	Series bool
}

// Value is one decoded number with its context.
type Value struct {
	Station Address
	Class   byte
	Time    time.Time // observation time (for a series, of this value)
	Element Element
	Value   float64
	Valid   bool // false: the station sent its "no data" pattern (all F, FF, FFFF, or M)
}

// Report is the body of an up-link report or query answer.
type Report struct {
	Function uint8
	Serial   uint16    // 流水号, 1–65535
	SendTime time.Time // 发报时间, to the second
	Items    []Item
	Values   []Value
}

// classFunctions are the functions whose F1 address is followed by the
// station classification code (6.6.4: the data reports and their queries).
func hasClass(fn uint8) bool {
	switch fn {
	case FnTest, FnInterval, FnTimed, FnAdded, FnHourly, FnPicture, FnQueryRealtime, FnQueryPeriod, FnQueryElements:
		return true
	}
	return false
}

// ParseReport reads the body of f, a report of function 2F, 30–34, 36
// (without decoding the picture), 37, 38 or 3A, up or down (a down-link
// confirmation has only the serial number and send time). Times are read in
// loc (the standard has no time zone: Beijing time in practice). On an error
// the Report holds what was read before it.
func ParseReport(f Frame, loc *time.Location) (Report, error) {
	r := Report{Function: f.Function}
	switch f.Function {
	case FnKeepAlive, FnTest, FnInterval, FnTimed, FnAdded, FnHourly, FnPicture, FnQueryRealtime, FnQueryPeriod, FnQueryElements:
	default:
		return r, fail(ErrUnsupported, "function %02X", f.Function)
	}
	if f.Start == SYN && f.Seq != 1 {
		return r, fail(ErrUnsupported, "packet %d of a multi-packet message: join the bodies first", f.Seq)
	}
	if f.Encoding == ASCII {
		return parseASCII(r, f, loc)
	}
	return parseHex(r, f, loc)
}

type walker struct {
	r       *Report
	loc     *time.Location
	station Address
	class   byte
	hasSt   bool
	obs     time.Time
	step    time.Duration
	hasStep bool
}

func parseHex(r Report, f Frame, loc *time.Location) (Report, error) {
	b := f.Body
	if len(b) < 8 {
		return r, fail(ErrBody, "%d bytes, no serial number and send time", len(b))
	}
	r.Serial = uint16(b[0])<<8 | uint16(b[1])
	t, err := bcdTime(b[2:8], loc)
	if err != nil {
		return r, err
	}
	r.SendTime = t
	w := walker{r: &r, loc: loc}
	pos := 8
	if f.Down || f.Function == FnKeepAlive {
		if pos != len(b) {
			return r, fail(ErrBody, "%d bytes after the send time", len(b)-pos)
		}
		return r, nil
	}
	for pos < len(b) {
		start := pos
		id := uint16(b[pos])
		pos++
		if id == 0xFF {
			if pos >= len(b) {
				return r, fail(ErrBody, "extended identifier cut")
			}
			id = 0xFF00 | uint16(b[pos])
			pos++
		}
		if pos >= len(b) {
			return r, fail(ErrBody, "identifier %02X without its definition byte", id)
		}
		def := b[pos]
		pos++
		el, ok := Elements[id]
		if !ok {
			return r, fail(ErrElement, "identifier %02X at byte %d", id, start)
		}
		n := int(def >> 3)
		switch el.Form {
		case FormTime:
			n = 5
			if def != 0xF0 {
				return r, fail(ErrDefinition, "observation time definition %02X, not F0", def)
			}
		case FormAddress:
			n = 5
			if def != 0xF1 {
				return r, fail(ErrDefinition, "address definition %02X, not F1", def)
			}
		case FormRest:
			n = len(b) - pos
		case FormDRP:
			if n != 12 {
				return r, fail(ErrDefinition, "DRP definition %02X, not 12 bytes", def)
			}
		case FormDRZ:
			if n != 24 {
				return r, fail(ErrDefinition, "DRZ definition %02X, not 24 bytes", def)
			}
		case FormStep:
			if def != 0x18 {
				return r, fail(ErrDefinition, "time step definition %02X, not 18", def)
			}
		case FormStatus:
			if n != 4 {
				return r, fail(ErrDefinition, "status definition %02X, not 4 bytes", def)
			}
		case FormBCD:
			if n == 0 {
				return r, fail(ErrDefinition, "element %02X definition %02X: no bytes", id, def)
			}
			if w.hasStep && (f.Function == FnInterval || f.Function == FnQueryPeriod) {
				// A uniform-interval series: this element's values to the end.
				rest := len(b) - pos
				if rest == 0 || rest%n != 0 {
					return r, fail(ErrBody, "series of %d bytes is not whole values of %d", rest, n)
				}
				n = rest
			}
		}
		if pos+n > len(b) {
			return r, fail(ErrBody, "element %02X needs %d bytes, %d left", id, n, len(b)-pos)
		}
		it := Item{ID: id, Def: def, Data: b[pos : pos+n]}
		pos += n
		if el.Form == FormAddress && hasClass(f.Function) {
			if pos >= len(b) {
				return r, fail(ErrBody, "no classification code after the address")
			}
			it.Class, it.HasClass = b[pos], true
			pos++
		}
		if err := w.add(el, it, HEX); err != nil {
			return r, err
		}
		r.Items = append(r.Items, it)
	}
	return r, nil
}

// add interprets one item: context (address, time, step) or values.
func (w *walker) add(el Element, it Item, enc Encoding) error {
	switch el.Form {
	case FormTime:
		t, err := w.time(it.Data, enc)
		if err != nil {
			return err
		}
		w.obs = t
		return nil
	case FormAddress:
		if enc == ASCII {
			a, err := ParseAddress(string(it.Data))
			if err != nil {
				return fail(ErrBody, "station address %q", it.Data)
			}
			w.station = a
		} else {
			copy(w.station[:], it.Data)
		}
		w.class, w.hasSt = it.Class, true
		return nil
	case FormStep:
		d, err := stepOf(it.Data, enc)
		if err != nil {
			return err
		}
		w.step, w.hasStep = d, true
		return nil
	case FormRest, FormStatus:
		return nil
	}
	if !w.hasSt || w.obs.IsZero() {
		return fail(ErrBody, "element %s before the station address and observation time", el.Code)
	}
	add := func(i int, v float64, ok bool, every time.Duration) {
		if !ok {
			v = 0
		}
		w.r.Values = append(w.r.Values, Value{Station: w.station, Class: w.class,
			Time: w.obs.Add(time.Duration(i) * every), Element: el, Value: v, Valid: ok})
	}
	switch {
	case el.Form == FormDRP:
		data, err := rawData(it.Data, enc, 12)
		if err != nil {
			return err
		}
		for i, c := range data {
			add(i, float64(c)/10, c != 0xFF, 5*time.Minute)
		}
	case el.Form == FormDRZ:
		data, err := rawData(it.Data, enc, 24)
		if err != nil {
			return err
		}
		for i := 0; i < 24; i += 2 {
			v := uint16(data[i])<<8 | uint16(data[i+1])
			add(i/2, float64(v)/100, v != 0xFFFF, 5*time.Minute)
		}
	case enc == ASCII:
		for i, tok := range strings.Split(string(it.Data), " ") {
			if !it.Series && i > 0 {
				return fail(ErrBody, "value %q", it.Data)
			}
			v, ok, err := asciiNumber([]byte(tok))
			if err != nil {
				return err
			}
			add(i, v, ok, w.step)
		}
	default:
		n, dec := int(it.Def>>3), int(it.Def&7)
		for i := 0; i*n < len(it.Data); i++ {
			v, ok, err := bcdNumber(it.Data[i*n:(i+1)*n], dec)
			if err != nil {
				return fail(ErrBCD, "element %s: %v", el.Code, err)
			}
			add(i, v, ok, w.step)
		}
	}
	return nil
}

func (w *walker) time(data []byte, enc Encoding) (time.Time, error) {
	if enc == ASCII {
		if len(data) != 10 || !isDigits(data) {
			return time.Time{}, fail(ErrBody, "observation time %q is not YYMMDDhhmm", data)
		}
		b, _ := hexDecode(data)
		return bcdTime(append(b, 0), w.loc)
	}
	return bcdTime(append(append([]byte(nil), data...), 0), w.loc)
}

// bcdTime reads YYMMDDhhmmss in BCD (20YY).
func bcdTime(b []byte, loc *time.Location) (time.Time, error) {
	var v [6]int
	for i, c := range b {
		hi, lo := c>>4, c&15
		if hi > 9 || lo > 9 {
			return time.Time{}, fail(ErrBCD, "time % X", b)
		}
		v[i] = int(hi)*10 + int(lo)
	}
	t := time.Date(2000+v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], 0, loc)
	if t.Month() != time.Month(v[1]) || t.Day() != v[2] || t.Hour() != v[3] || t.Minute() != v[4] || t.Second() != v[5] {
		return time.Time{}, fail(ErrBCD, "time % X is not a date", b)
	}
	return t, nil
}

func appendBCDTime(dst []byte, t time.Time, loc *time.Location, n int) []byte {
	t = t.In(loc)
	v6 := [...]int{t.Year() % 100, int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second()}
	for _, v := range v6[:n] {
		dst = append(dst, byte(v/10<<4|v%10))
	}
	return dst
}

// bcdNumber reads a BCD number with dec decimals: a first byte FF means
// negative (6.6.3.3), every nibble F means no data.
func bcdNumber(b []byte, dec int) (float64, bool, error) {
	allF := true
	for _, c := range b {
		if c != 0xFF {
			allF = false
		}
	}
	if allF {
		return 0, false, nil
	}
	neg := false
	if b[0] == 0xFF {
		neg, b = true, b[1:]
	}
	var v uint64
	for _, c := range b {
		hi, lo := c>>4, c&15
		if hi > 9 || lo > 9 {
			return 0, false, fmt.Errorf("% X is not BCD", b)
		}
		v = v*100 + uint64(hi)*10 + uint64(lo)
	}
	x := float64(v) / math.Pow10(dec)
	if neg {
		x = -x
	}
	return x, true, nil
}

func stepOf(data []byte, enc Encoding) (time.Duration, error) {
	var d, h, m int
	if enc == ASCII {
		// DRD nn, DRH nn, DRN nn (table C.2): data holds "D05", "H01", "N05".
		if len(data) != 3 || !isDigits(data[1:]) {
			return 0, fail(ErrBody, "time step %q", data)
		}
		n := int(data[1]-'0')*10 + int(data[2]-'0')
		switch data[0] {
		case 'D':
			d = n
		case 'H':
			h = n
		case 'N':
			m = n
		default:
			return 0, fail(ErrBody, "time step %q", data)
		}
	} else {
		var v [3]int
		for i, c := range data {
			if c>>4 > 9 || c&15 > 9 {
				return 0, fail(ErrBCD, "time step % X", data)
			}
			v[i] = int(c>>4)*10 + int(c&15)
		}
		d, h, m = v[0], v[1], v[2]
	}
	if d > 31 || h > 23 || m > 59 {
		return 0, fail(ErrBody, "time step %dd%dh%dm", d, h, m)
	}
	if d == 0 && h == 0 && m == 0 {
		// Table C.1 note g: 000000 goes with DRP/DRZ, whose values are 5 minutes apart.
		return 5 * time.Minute, nil
	}
	return time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}

// rawData is HEX bytes as sent, or in ASCII the hex digits written for them.
func rawData(data []byte, enc Encoding, n int) ([]byte, error) {
	if enc == HEX {
		return data, nil
	}
	b, ok := hexDecode(data)
	if !ok || len(b) != n {
		return nil, fail(ErrBody, "%q is not %d bytes in hex digits", data, n)
	}
	return b, nil
}

func asciiNumber(s []byte) (float64, bool, error) {
	if string(s) == "M" {
		return 0, false, nil
	}
	t := s
	if len(t) > 0 && (t[0] == '-' || t[0] == '+') {
		t = t[1:]
	}
	ip, fp, dot := bytes.Cut(t, []byte("."))
	if !isDigits(ip) || dot && !isDigits(fp) {
		return 0, false, fail(ErrBody, "value %q is not a decimal number", s)
	}
	v, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		return 0, false, fail(ErrBody, "value %q: %v", s, err)
	}
	return v, true, nil
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func hexDecode(s []byte) ([]byte, bool) {
	if len(s)%2 != 0 {
		return nil, false
	}
	out := make([]byte, len(s)/2)
	for i := range out {
		hi, ok1 := hexDigit(s[2*i])
		lo, ok2 := hexDigit(s[2*i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		out[i] = hi<<4 | lo
	}
	return out, true
}

// NumberItem writes v as the data of element id (a FormBCD element) with the
// definition of table C.1, N(Digits,Decimals): in HEX as BCD in
// (Digits+1)/2 bytes, preceded by an FF byte when negative (which makes the
// standard's FF0 for an odd digit count and FF for an even one), with the
// definition byte bytes<<3|Decimals; in ASCII as decimal text with Decimals
// places. valid false writes the no-data form: all F in HEX, "M" in ASCII.
// A value with more digits than the definition allows is refused.
func NumberItem(id uint16, v float64, valid bool, enc Encoding) (Item, error) {
	el, ok := Elements[id]
	if !ok || el.Form != FormBCD {
		return Item{}, fail(ErrElement, "identifier %02X is not a number element", id)
	}
	if enc == ASCII {
		if !valid {
			return Item{ID: id, Data: []byte("M")}, nil
		}
		return Item{ID: id, Data: strconv.AppendFloat(nil, v, 'f', el.Decimals, 64)}, nil
	}
	n := (el.Digits + 1) / 2
	if !valid {
		return Item{ID: id, Def: byte(n<<3 | el.Decimals), Data: bytes.Repeat([]byte{0xFF}, n)}, nil
	}
	scaled := math.Round(math.Abs(v) * math.Pow10(el.Decimals))
	if math.IsNaN(v) || scaled >= math.Pow10(el.Digits) {
		return Item{}, fail(ErrBody, "%v does not fit %s's N(%d,%d)", v, el.Code, el.Digits, el.Decimals)
	}
	digits := strconv.FormatUint(uint64(scaled), 10)
	digits = strings.Repeat("0", 2*n-len(digits)) + digits
	var data []byte
	if v < 0 && scaled != 0 {
		data = append(data, 0xFF)
	}
	for i := 0; i < 2*n; i += 2 {
		data = append(data, (digits[i]-'0')<<4|(digits[i+1]-'0'))
	}
	return Item{ID: id, Def: byte(len(data)<<3 | el.Decimals), Data: data}, nil
}
