package hj212

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// Flag is the data segment's Flag (拆分包及应答标志, HJ 212-2017 table 3):
// bits 7–2 the protocol version (V5–V0), bit 1 D (the packet carries PNUM
// and PNO), bit 0 A (the receiver must answer).
type Flag uint8

// Protocol versions in Flag's bits 7–2.
const (
	VersionHJT2005 = 0 // HJ/T 212-2005 (000000)
	Version2017    = 1 // HJ 212-2017 (000001)
	// Version2025 is HJ 212-2025 as the public implementations write it
	// (Flag 8 or 9). Unverified against the 2025 text: see
	// docs/standards/hj212.md.
	Version2025 = 2
)

// Flag bits.
const (
	FlagAck   Flag = 1 << 0 // A: the receiver answers (9014 for data, 9011/9012 for requests)
	FlagSplit Flag = 1 << 1 // D: the packet carries PNUM and PNO
)

// MakeFlag builds a Flag.
func MakeFlag(version int, split, ack bool) Flag {
	f := Flag(version&0x3F) << 2
	if split {
		f |= FlagSplit
	}
	if ack {
		f |= FlagAck
	}
	return f
}

// Version is the protocol version in bits 7–2.
func (f Flag) Version() int { return int(f >> 2) }

// Ack reports whether the A bit is set.
func (f Flag) Ack() bool { return f&FlagAck != 0 }

// Split reports whether the D bit is set.
func (f Flag) Split() bool { return f&FlagSplit != 0 }

// Packet is a data segment (数据段, HJ 212-2017 6.3.2).
type Packet struct {
	QN string // request number, YYYYMMDDhhmmsszzz; "" when absent (HJ/T 212-2005 uploads may omit it)
	ST string // system code, 2 characters (table 5)
	CN string // command code, 4 digits (table 9)
	PW string // access password, at most 6 characters
	MN string // device id, at most 24 characters
	// Flag; written unless NoFlag (HJ/T 212-2005 uploads may omit it).
	Flag   Flag
	NoFlag bool
	// PNUM and PNO, the packet count and number of a split message; 0 when
	// absent. Present exactly when Flag has the D bit (a packet without
	// Flag may carry them).
	PNUM, PNO int
	CP        CP // the data area inside CP=&&…&&
}

// Widths from HJ 212-2017 table 3 (its lengths include "Name=").
const (
	lenQN   = 17
	maxPW   = 6
	maxMN   = 24
	maxPNUM = 4
	maxPNO  = 4
)

var fieldOrder = [...]string{"QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO"}

// DecodePacket parses a data segment strictly: every field Name=Value,
// fields separated by ';', only the fields of table 3 and each at most once,
// CP last; values within their definitions (QN 17 digits, ST 2 characters
// 0–9 A–Z, CN 4 digits, PW and MN letters and digits of at most 6 and 24
// characters, Flag 0–255, PNUM and PNO 1–9999 consistent with Flag's D bit);
// no control characters, valid UTF-8; at most MaxData bytes, CP at most
// MaxCP. The header fields may come in any order; Encode writes them in the
// standard's.
func DecodePacket(data []byte) (Packet, error) {
	var p Packet
	if len(data) > MaxData {
		return p, fail(ErrOversize, "data segment of %d bytes, at most %d", len(data), MaxData)
	}
	if err := checkText(data); err != nil {
		return p, err
	}
	cpAt := -1
	if bytes.HasPrefix(data, []byte("CP=&&")) {
		cpAt = 0
	} else if i := bytes.Index(data, []byte(";CP=&&")); i >= 0 {
		cpAt = i + 1
	}
	if cpAt < 0 {
		return p, fail(ErrMissing, "no CP=&&")
	}
	cp := data[cpAt:]
	if len(cp) > MaxCP {
		return p, fail(ErrOversize, "CP of %d bytes, at most %d", len(cp), MaxCP)
	}
	if len(cp) < len("CP=&&&&") || !bytes.HasSuffix(cp, []byte("&&")) {
		return p, fail(ErrSyntax, "CP does not end with && at the end of the data segment")
	}
	items, err := ParseCP(cp[len("CP=&&") : len(cp)-2])
	if err != nil {
		return p, err
	}
	p.CP = items
	p.NoFlag = true
	seen := 0
	head := data[:cpAt]
	for len(head) > 0 {
		i := bytes.IndexByte(head, ';')
		if i < 0 {
			return p, fail(ErrSyntax, "field %s not followed by ';'", quote(head))
		}
		f := head[:i]
		head = head[i+1:]
		eq := bytes.IndexByte(f, '=')
		if eq <= 0 {
			return p, fail(ErrSyntax, "field %s is not Name=Value", quote(f))
		}
		name, val := string(f[:eq]), string(f[eq+1:])
		k := -1
		for j, n := range fieldOrder {
			if n == name {
				k = j
			}
		}
		if k < 0 {
			return p, fail(ErrSyntax, "unknown field %q", name)
		}
		if seen&(1<<k) != 0 {
			return p, fail(ErrSyntax, "field %s twice", name)
		}
		seen |= 1 << k
		if err := p.set(name, val); err != nil {
			return p, err
		}
	}
	for _, n := range [...]string{"ST", "CN", "PW", "MN"} {
		if p.get(n) == "" {
			return p, fail(ErrMissing, "no %s", n)
		}
	}
	return p, p.checkSplit()
}

func (p *Packet) set(name, v string) error {
	switch name {
	case "QN":
		if !isQN(v) {
			return fail(ErrField, "QN %q is not 17 digits", v)
		}
		p.QN = v
	case "ST":
		if !isST(v) {
			return fail(ErrField, "ST %q is not 2 characters 0-9 A-Z", v)
		}
		p.ST = v
	case "CN":
		if !isDigits(v) || len(v) != 4 {
			return fail(ErrField, "CN %q is not 4 digits", v)
		}
		p.CN = v
	case "PW":
		if !isAlnum(v) || len(v) > maxPW {
			return fail(ErrField, "PW %q is not 1-%d letters or digits", v, maxPW)
		}
		p.PW = v
	case "MN":
		if !isAlnum(v) || len(v) > maxMN {
			return fail(ErrField, "MN %q is not 1-%d letters or digits", v, maxMN)
		}
		p.MN = v
	case "Flag":
		n, err := strconv.Atoi(v)
		if err != nil || !isDigits(v) || len(v) > 3 || n > 255 {
			return fail(ErrField, "Flag %q is not 0-255", v)
		}
		p.Flag, p.NoFlag = Flag(n), false
	case "PNUM", "PNO":
		n, err := strconv.Atoi(v)
		if err != nil || !isDigits(v) || len(v) > maxPNUM || n < 1 {
			return fail(ErrField, "%s %q is not 1-9999", name, v)
		}
		if name == "PNUM" {
			p.PNUM = n
		} else {
			p.PNO = n
		}
	}
	return nil
}

func (p *Packet) get(name string) string {
	switch name {
	case "ST":
		return p.ST
	case "CN":
		return p.CN
	case "PW":
		return p.PW
	case "MN":
		return p.MN
	}
	return ""
}

func (p *Packet) checkSplit() error {
	has := p.PNUM != 0 || p.PNO != 0
	switch {
	case has && (p.PNUM == 0 || p.PNO == 0):
		return fail(ErrSplit, "PNUM %d and PNO %d: one without the other", p.PNUM, p.PNO)
	case has && (p.PNUM < 0 || p.PNO < 0 || p.PNUM > 9999):
		return fail(ErrField, "PNUM %d, PNO %d: not 1-9999", p.PNUM, p.PNO)
	case has && p.PNO > p.PNUM:
		return fail(ErrSplit, "PNO %d after PNUM %d", p.PNO, p.PNUM)
	case !p.NoFlag && p.Flag.Split() && !has:
		return fail(ErrSplit, "Flag %d has D but no PNUM/PNO", p.Flag)
	case !p.NoFlag && !p.Flag.Split() && has:
		return fail(ErrSplit, "PNUM/PNO but Flag %d has no D", p.Flag)
	}
	return nil
}

// Encode returns the data segment of p, fields in the standard's order
// (QN, ST, CN, PW, MN, Flag, PNUM, PNO, CP), after the same checks as
// DecodePacket.
func (p Packet) Encode() ([]byte, error) { return p.AppendEncode(nil) }

// AppendEncode appends the data segment of p to dst (see Encode).
func (p Packet) AppendEncode(dst []byte) ([]byte, error) {
	start := len(dst)
	if p.QN != "" && !isQN(p.QN) {
		return dst, fail(ErrField, "QN %q is not 17 digits", p.QN)
	}
	for _, f := range [...]struct{ name, v string }{{"ST", p.ST}, {"CN", p.CN}, {"PW", p.PW}, {"MN", p.MN}} {
		if f.v == "" {
			return dst, fail(ErrMissing, "no %s", f.name)
		}
		var q Packet
		if err := q.set(f.name, f.v); err != nil {
			return dst, err
		}
	}
	if err := p.checkSplit(); err != nil {
		return dst, err
	}
	if p.QN != "" {
		dst = append(append(append(dst, "QN="...), p.QN...), ';')
	}
	dst = append(append(append(dst, "ST="...), p.ST...), ';')
	dst = append(append(append(dst, "CN="...), p.CN...), ';')
	dst = append(append(append(dst, "PW="...), p.PW...), ';')
	dst = append(append(append(dst, "MN="...), p.MN...), ';')
	if !p.NoFlag {
		dst = append(strconv.AppendUint(append(dst, "Flag="...), uint64(p.Flag), 10), ';')
	}
	if p.PNUM != 0 {
		dst = append(strconv.AppendInt(append(dst, "PNUM="...), int64(p.PNUM), 10), ';')
		dst = append(strconv.AppendInt(append(dst, "PNO="...), int64(p.PNO), 10), ';')
	}
	cpAt := len(dst)
	dst = append(dst, "CP=&&"...)
	var err error
	if dst, err = p.CP.Append(dst); err != nil {
		return dst[:start], err
	}
	dst = append(dst, "&&"...)
	if n := len(dst) - cpAt; n > MaxCP {
		return dst[:start], fail(ErrOversize, "CP of %d bytes, at most %d", n, MaxCP)
	}
	if n := len(dst) - start; n > MaxData {
		return dst[:start], fail(ErrOversize, "data segment of %d bytes, at most %d", n, MaxData)
	}
	return dst, nil
}

// Frame returns the communication packet carrying p.
func (p Packet) Frame() ([]byte, error) {
	data, err := p.Encode()
	if err != nil {
		return nil, err
	}
	return Pack(data)
}

// Decode checks a whole communication packet and parses its data segment.
func Decode(frame []byte) (Packet, error) {
	data, err := Unpack(frame)
	if err != nil {
		return Packet{}, err
	}
	return DecodePacket(data)
}

// checkText refuses control characters and invalid UTF-8 (HJ 212-2017 6.3:
// ASCII characters, Chinese characters in UTF-8).
func checkText(b []byte) error {
	for i, c := range b {
		if c < 0x20 || c == 0x7F {
			return fail(ErrSyntax, "control character %#02x at %d", c, i)
		}
	}
	if !utf8.Valid(b) {
		return fail(ErrSyntax, "not UTF-8")
	}
	return nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return s != ""
}

func isQN(s string) bool { return len(s) == lenQN && isDigits(s) }

func isST(s string) bool {
	if len(s) != 2 {
		return false
	}
	for i := 0; i < 2; i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
