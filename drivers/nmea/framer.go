package nmea

// Refusal kinds counted in stream.Stats.Errors.
const (
	KindGarbage         = "garbage"          // printable bytes outside frames, once per run
	KindBinary          = "binary"           // control or non-ASCII bytes, outside or inside a frame
	KindTruncated       = "truncated"        // a frame interrupted by the next start delimiter
	KindOverlong        = "overlong"         // a frame longer than Config.MaxLine
	KindCut             = "cut"              // a frame interrupted by Start (the port reopened)
	KindChecksum        = "checksum"         // wrong or badly written checksum
	KindNoChecksum      = "no_checksum"      // no checksum, and Config.AllowNoChecksum is off
	KindUnknownSentence = "unknown_sentence" // a formatter this driver does not map
	KindMalformed       = "malformed"        // go-nmea refused it, or a value is not finite
	KindIgnored         = "ignored"          // left out by the config
	KindEmpty           = "empty"            // every data field empty
	KindInvalidStatus   = "invalid_status"   // the device flagged the data invalid
	KindUnmapped        = "unmapped"         // XDR without a mapped transducer
)

// framer cuts a byte stream into frames. It is fed in any split and keeps
// the unfinished frame between calls.
type framer struct {
	buf   []byte // the frame so far, from its start delimiter
	max   int
	state uint8
	// junk is set while in a run of non-space bytes outside frames; binary
	// when that run holds a control or non-ASCII byte.
	junk, binary bool
	count        func(kind string)
}

const (
	idle     = iota // between frames
	inFrame         // collecting a frame
	skipping        // dropping the rest of a refused frame up to its line end
)

func newFramer(max int, count func(string)) framer {
	return framer{buf: make([]byte, 0, max), max: max, count: count}
}

// next consumes data up to and including the line end of the next complete
// frame. It returns that frame (without the line end; valid until the next
// call) and how many bytes it consumed; frame is nil when data ran out
// first.
func (f *framer) next(data []byte) (frame []byte, n int) {
	for i, c := range data {
		switch f.state {
		case idle:
			switch {
			case c == '$' || c == '!':
				f.endJunk()
				f.buf = append(f.buf[:0], c)
				f.state = inFrame
			case c == '\r' || c == '\n':
				f.endJunk()
			case c == ' ' || c == '\t':
			default:
				f.junk = true
				if c < 0x20 || c >= 0x7f {
					f.binary = true
				}
			}
		case inFrame:
			switch {
			case c == '\r' || c == '\n':
				f.state = idle
				return f.buf, i + 1
			case c == '$' || c == '!':
				f.count(KindTruncated)
				f.buf = append(f.buf[:0], c)
			case (c < 0x20 && c != '\t') || c >= 0x7f:
				f.count(KindBinary)
				f.state = skipping
			case len(f.buf) >= f.max:
				f.count(KindOverlong)
				f.state = skipping
			default:
				f.buf = append(f.buf, c)
			}
		case skipping:
			switch c {
			case '\r', '\n':
				f.state = idle
			case '$', '!':
				f.buf = append(f.buf[:0], c)
				f.state = inFrame
			}
		}
	}
	return nil, len(data)
}

// endJunk counts a finished run of bytes outside frames.
func (f *framer) endJunk() {
	if !f.junk {
		return
	}
	if f.binary {
		f.count(KindBinary)
	} else {
		f.count(KindGarbage)
	}
	f.junk, f.binary = false, false
}

// reset forgets the unfinished frame, counting it as cut, and any pending
// junk run.
func (f *framer) reset() {
	if f.state == inFrame {
		f.count(KindCut)
	}
	f.endJunk()
	f.state = idle
	f.buf = f.buf[:0]
}

// checksum verifies a frame's checksum. It returns the body between the
// start delimiter and '*' (or the end when there is no checksum), whether a
// checksum was present, and the refusal kind, "" when it is fine.
func checksum(frame []byte, allowNone bool) (body []byte, kind string) {
	star := -1
	for i, c := range frame {
		if c == '*' {
			star = i
			break
		}
	}
	if star < 0 {
		if !allowNone {
			return nil, KindNoChecksum
		}
		return frame[1:], ""
	}
	tail := trimRight(frame[star+1:])
	if len(tail) != 2 {
		return nil, KindChecksum
	}
	hi, ok1 := unhex(tail[0])
	lo, ok2 := unhex(tail[1])
	if !ok1 || !ok2 {
		return nil, KindChecksum
	}
	var x byte
	for _, c := range frame[1:star] {
		x ^= c
	}
	if x != hi<<4|lo {
		return nil, KindChecksum
	}
	return frame[1:star], ""
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func trimRight(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// sentenceType returns the formatter of a frame body's address field
// ("WIMWV" → "MWV", "02MWV" → "MWV", "PNORW" → "PNORW"), or "" when this
// driver does not map it. The result is a constant, so no allocation.
func sentenceType(body []byte) string {
	addr := body
	for i, c := range body {
		if c == ',' {
			addr = body[:i]
			break
		}
	}
	addr = trimRight(addr)
	if len(addr) == 5 && addr[0] == 'P' {
		if string(addr) == "PNORW" {
			return "PNORW"
		}
		return ""
	}
	if len(addr) != 5 {
		return ""
	}
	switch string(addr[2:]) {
	case "DBS":
		return "DBS"
	case "DBT":
		return "DBT"
	case "DPT":
		return "DPT"
	case "GGA":
		return "GGA"
	case "HDT":
		return "HDT"
	case "MDA":
		return "MDA"
	case "MTA":
		return "MTA"
	case "MTW":
		return "MTW"
	case "MWD":
		return "MWD"
	case "MWH":
		return "MWH"
	case "MWV":
		return "MWV"
	case "RMC":
		return "RMC"
	case "VHW":
		return "VHW"
	case "XDR":
		return "XDR"
	case "ZDA":
		return "ZDA"
	}
	return ""
}
