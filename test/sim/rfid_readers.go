package sim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// RFIDFaults are the faults a simulated passive RFID reader injects: each
// is the chance (0 to 1) that one frame is spoiled that way.
type RFIDFaults struct {
	// Corrupt changes the frame: an EM4100 checksum digit, or a digit of a
	// text line turned into 'X'.
	Corrupt float64
	// Garbage sends a burst of noise bytes before the frame (a text reader
	// ends the burst with CR LF, as line noise ends with the next line).
	Garbage float64
	// Cut sends only the first part of the frame.
	Cut float64
}

// RFIDCounts counts what a simulated reader sent.
type RFIDCounts struct {
	Frames  int // frames begun, spoiled or not
	Good    int // frames sent whole and correct
	Corrupt int
	Garbage int
	Cut     int
}

// TagReader simulates a passive reader: while a tag is present it sends
// the tag's frame every Period (100 ms unless set), with faults injected
// at random from a seeded source, so a run is reproducible.
type TagReader struct {
	Period time.Duration
	Faults RFIDFaults
	Counts RFIDCounts

	encode  func(tag string) []byte
	corrupt func(frame []byte, rng *rand.Rand) []byte
	text    bool
	rng     *rand.Rand
	tag     string
	next    time.Time // when the next frame is due; zero when no tag
}

// NewEM4100Reader is an RDM6300: 14-byte frames STX, 10 hex digits, 2 hex
// digits of XOR checksum, ETX. Tags are 10 hex digits, e.g. "14008EC793".
func NewEM4100Reader(seed uint64) *TagReader {
	return &TagReader{encode: func(tag string) []byte { return EM4100Frame(tag, false) }, corrupt: corruptEM, rng: rfidRNG(seed)}
}

// NewID12LAReader is an ID Innovations ID-12LA in ASCII mode: as the
// RDM6300 with CR LF before ETX.
func NewID12LAReader(seed uint64) *TagReader {
	return &TagReader{encode: func(tag string) []byte { return EM4100Frame(tag, true) }, corrupt: corruptEM, rng: rfidRNG(seed)}
}

// FDXBFormat is how a simulated 134.2 kHz reader prints a tag.
type FDXBFormat int

// FDX-B reader output formats.
const (
	FDXBAllflex    FDXBFormat = iota // LA 982 000001088420
	FDXBTIRIS                        // LA 00000 0 982 000001088420
	FDXB15Digits                     // 982000001088420
	FDXBDotHex                       // 3D6.00010994A4
	FDXBIndustrial                   // LR 0006 0000000018514348 (tag of 20 digits)
)

// NewFDXBReader is an animal-tag reader printing each read as a line in
// format, ended by CR LF and, if stx, started by STX (ISO 24631-6). Tags
// are 15 digits (CCC and the national number), or 20 for FDXBIndustrial.
func NewFDXBReader(seed uint64, format FDXBFormat, stx bool) *TagReader {
	return &TagReader{
		encode: func(tag string) []byte {
			line := FDXBLine(tag, format) + "\r\n"
			if stx {
				line = "\x02" + line
			}
			return []byte(line)
		},
		corrupt: corruptText,
		text:    true,
		rng:     rfidRNG(seed),
	}
}

func rfidRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x52464944)) }

// Present puts tag in the field at now; the first read is sent at now.
func (r *TagReader) Present(tag string, now time.Time) {
	r.tag, r.next = tag, now
}

// Remove takes the tag out of the field.
func (r *TagReader) Remove() { r.tag, r.next = "", time.Time{} }

// Read returns the bytes the reader sent up to and including now.
func (r *TagReader) Read(now time.Time) []byte {
	period := r.Period
	if period <= 0 {
		period = 100 * time.Millisecond
	}
	var out []byte
	for r.tag != "" && !r.next.After(now) {
		out = append(out, r.frame()...)
		r.next = r.next.Add(period)
	}
	return out
}

// frame is one read of the tag, perhaps spoiled.
func (r *TagReader) frame() []byte {
	r.Counts.Frames++
	var out []byte
	if r.rng.Float64() < r.Faults.Garbage {
		r.Counts.Garbage++
		out = append(out, r.noise()...)
	}
	f := r.encode(r.tag)
	switch x := r.rng.Float64(); {
	case x < r.Faults.Corrupt:
		r.Counts.Corrupt++
		f = r.corrupt(f, r.rng)
	case x < r.Faults.Corrupt+r.Faults.Cut:
		r.Counts.Cut++
		f = f[:1+r.rng.IntN(len(f)-3)] // never reaching the end marks
	default:
		r.Counts.Good++
	}
	return append(out, f...)
}

// noise is 1 to 8 random bytes other than STX (and, for text, CR and
// LF), holding at least one control byte; text noise ends with CR LF.
func (r *TagReader) noise() []byte {
	n := 1 + r.rng.IntN(8)
	b := make([]byte, 0, n+3)
	b = append(b, 0x01)
	for len(b) < n {
		c := byte(r.rng.IntN(256))
		if c == 0x02 || r.text && (c == '\r' || c == '\n' || c == 0x03) {
			continue
		}
		b = append(b, c)
	}
	if r.text {
		b = append(b, '\r', '\n')
	}
	return b
}

// EM4100Frame is the frame of a 10-hex-digit EM4100 tag, with CR LF
// before ETX for the ID-12LA.
func EM4100Frame(tag string, crlf bool) []byte {
	var x uint64
	for i := 0; i+2 <= len(tag); i += 2 {
		v, _ := strconv.ParseUint(tag[i:i+2], 16, 8)
		x ^= v
	}
	f := fmt.Sprintf("\x02%s%02X", tag, x)
	if crlf {
		f += "\r\n"
	}
	return []byte(f + "\x03")
}

func corruptEM(f []byte, _ *rand.Rand) []byte {
	f = append([]byte(nil), f...)
	if f[12] == '0' { // the checksum's low digit
		f[12] = '1'
	} else {
		f[12] = '0'
	}
	return f
}

func corruptText(f []byte, rng *rand.Rand) []byte {
	f = append([]byte(nil), f...)
	for {
		if i := rng.IntN(len(f)); f[i] >= '0' && f[i] <= '9' {
			f[i] = 'X'
			return f
		}
	}
}

// FDXBLine prints a tag (15 digits, or 20 for FDXBIndustrial) in format,
// without line end.
func FDXBLine(tag string, format FDXBFormat) string {
	switch format {
	case FDXBTIRIS:
		return "LA 00000 0 " + tag[:3] + " " + tag[3:]
	case FDXB15Digits:
		return tag
	case FDXBDotHex:
		c, _ := strconv.ParseUint(tag[:3], 10, 16)
		n, _ := strconv.ParseUint(tag[3:], 10, 64)
		return fmt.Sprintf("%03X.%010X", c, n)
	case FDXBIndustrial:
		return "LR " + tag[:4] + " " + tag[4:]
	}
	return "LA " + tag[:3] + " " + tag[3:]
}

// Wiegand26Line is the 26 '0'/'1' characters of an H10301 card as a
// Wiegand-to-serial converter prints them, first bit first.
func Wiegand26Line(facility uint8, card uint16) string {
	payload := fmt.Sprintf("%08b%016b", facility, card)
	ones := func(s string) int {
		n := 0
		for _, c := range s {
			if c == '1' {
				n++
			}
		}
		return n
	}
	even, odd := "0", "1"
	if ones(payload[:12])%2 == 1 {
		even = "1"
	}
	if ones(payload[12:])%2 == 1 {
		odd = "0"
	}
	return even + payload + odd
}
