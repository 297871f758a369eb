package hj212

import (
	"strings"
	"time"
)

// Field is one Name=Value of the data area.
type Field struct {
	Name, Value string
}

// Item is one item (项目) of the data area: its fields, separated by ',' on
// the wire (HJ 212-2017 6.3.3.1), such as
// w01018-Rtd=2.2,w01018-Flag=N.
type Item []Field

// CP is the data area inside CP=&&…&&: its items in order, separated by ';'
// on the wire.
type CP []Item

// ParseCP parses the inside of CP=&&…&& strictly: items separated by ';',
// fields by ',', each Name=Value with a name of letters, digits and '-'
// (HJ 212-2017 6.3.3.2.1) and a value without ';' ',' '=' '&' or control
// characters (a value may be empty). An empty data area is an empty CP; an
// empty item (";;", or ';' before the closing &&) is refused.
func ParseCP(b []byte) (CP, error) {
	if err := checkText(b); err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, nil
	}
	s := string(b)
	var cp CP
	for s != "" || cp == nil {
		item, rest, more := strings.Cut(s, ";")
		if item == "" {
			return nil, fail(ErrSyntax, "empty item in CP")
		}
		var it Item
		for f := range strings.SplitSeq(item, ",") {
			name, val, ok := strings.Cut(f, "=")
			if !ok || !isName(name) {
				return nil, fail(ErrSyntax, "field %q is not Name=Value", f)
			}
			if strings.ContainsAny(val, "=&") {
				return nil, fail(ErrSyntax, "value of %s holds '=' or '&'", name)
			}
			it = append(it, Field{name, val})
		}
		cp = append(cp, it)
		s = rest
		if more && s == "" {
			return nil, fail(ErrSyntax, "empty item at the end of CP")
		}
	}
	return cp, nil
}

// Append writes cp in its wire form (without CP=&& and &&) after checking
// every name and value as ParseCP does.
func (cp CP) Append(dst []byte) ([]byte, error) {
	for i, it := range cp {
		if len(it) == 0 {
			return dst, fail(ErrSyntax, "empty item %d", i)
		}
		if i > 0 {
			dst = append(dst, ';')
		}
		for j, f := range it {
			if !isName(f.Name) {
				return dst, fail(ErrSyntax, "field name %q", f.Name)
			}
			if strings.ContainsAny(f.Value, ";,=&") || checkText([]byte(f.Value)) != nil {
				return dst, fail(ErrSyntax, "value %q of %s", f.Value, f.Name)
			}
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(append(append(dst, f.Name...), '='), f.Value...)
		}
	}
	return dst, nil
}

// String is the wire form of cp (without CP=&& and &&); "" when invalid.
func (cp CP) String() string {
	b, err := cp.Append(nil)
	if err != nil {
		return ""
	}
	return string(b)
}

// Get returns the value of the first field called name.
func (cp CP) Get(name string) (string, bool) {
	for _, it := range cp {
		for _, f := range it {
			if f.Name == name {
				return f.Value, true
			}
		}
	}
	return "", false
}

// Params returns the fields whose names hold no '-' (DataTime, QnRtn,
// ExeRtn, BeginTime, EndTime, OverTime, …): name → value, the first
// occurrence of each.
func (cp CP) Params() map[string]string {
	m := map[string]string{}
	for _, it := range cp {
		for _, f := range it {
			if !strings.Contains(f.Name, "-") {
				if _, dup := m[f.Name]; !dup {
					m[f.Name] = f.Value
				}
			}
		}
	}
	return m
}

// Factors returns the fields named code-suffix (w01018-Rtd, a34004-Avg,
// SB1-RS, i12001-Info, …), grouped by code: code → suffix → value, the first
// occurrence of each.
func (cp CP) Factors() map[string]map[string]string {
	m := map[string]map[string]string{}
	for _, it := range cp {
		for _, f := range it {
			code, suffix, ok := strings.Cut(f.Name, "-")
			if !ok {
				continue
			}
			fs := m[code]
			if fs == nil {
				fs = map[string]string{}
				m[code] = fs
			}
			if _, dup := fs[suffix]; !dup {
				fs[suffix] = f.Value
			}
		}
	}
	return m
}

// FactorItem builds the item of one factor: code-k=v for each pair, in order
// (for example FactorItem("w01018", "Rtd", "2.2", "Flag", "N")). It panics on
// an odd number of arguments.
func FactorItem(code string, kv ...string) Item {
	if len(kv)%2 != 0 {
		panic("hj212.FactorItem: odd number of arguments")
	}
	it := make(Item, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		it = append(it, Field{code + "-" + kv[i], kv[i+1]})
	}
	return it
}

// TimeLayout is the layout of DataTime, BeginTime, EndTime, SystemTime
// (YYYYMMDDhhmmss, table 4).
const TimeLayout = "20060102150405"

// ParseTime reads a YYYYMMDDhhmmss field in loc (the standard has no time
// zone: Beijing time, UTC+8, in practice).
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	if len(s) != len(TimeLayout) || !isDigits(s) {
		return time.Time{}, fail(ErrField, "time %q is not YYYYMMDDhhmmss", s)
	}
	t, err := time.ParseInLocation(TimeLayout, s, loc)
	if err != nil {
		return time.Time{}, fail(ErrField, "time %q: %v", s, err)
	}
	return t, nil
}

// FormatTime writes t as YYYYMMDDhhmmss in loc.
func FormatTime(t time.Time, loc *time.Location) string { return t.In(loc).Format(TimeLayout) }

// QN returns the request number for t in loc: YYYYMMDDhhmmsszzz.
func QN(t time.Time, loc *time.Location) string {
	t = t.In(loc)
	return t.Format(TimeLayout) + t.Format(".000")[1:]
}

// QNTime reads a request number in loc.
func QNTime(qn string, loc *time.Location) (time.Time, error) {
	if !isQN(qn) {
		return time.Time{}, fail(ErrField, "QN %q is not 17 digits", qn)
	}
	t, err := ParseTime(qn[:14], loc)
	if err != nil {
		return t, err
	}
	ms := int(qn[14]-'0')*100 + int(qn[15]-'0')*10 + int(qn[16]-'0')
	return t.Add(time.Duration(ms) * time.Millisecond), nil
}

// Beijing is UTC+8 without daylight saving, the zone of the standard's
// times in practice.
var Beijing = time.FixedZone("CST", 8*3600)

func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return s != ""
}
