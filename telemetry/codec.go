package telemetry

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"time"
)

// Codec selects how a batch body is encoded. It is carried in every encoded
// batch, so a cloud can read what older and newer gateways send.
type Codec uint8

// Codecs. Append only.
const (
	// CodecRows is the row body, uncompressed: a series dictionary, then per
	// reading a series index, a time delta, the value and flags.
	CodecRows Codec = 1
	// CodecRowsDeflate is CodecRows compressed with DEFLATE (RFC 1951).
	CodecRowsDeflate Codec = 2
	// CodecItems is readings and events: a rows section, then an events
	// section. Encode uses it in place of CodecRows when a batch has
	// events, so a cloud that knows only rows never misreads one.
	CodecItems Codec = 3
	// CodecItemsDeflate is CodecItems compressed with DEFLATE.
	CodecItemsDeflate Codec = 4
)

func (c Codec) String() string {
	switch c {
	case CodecRows:
		return "rows"
	case CodecRowsDeflate:
		return "rows+deflate"
	case CodecItems:
		return "items"
	case CodecItemsDeflate:
		return "items+deflate"
	case CodecCompact:
		return "compact"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// Wire limits. A decoder refuses anything larger, so a hostile or broken
// sender cannot make the cloud allocate without bound.
const (
	// FormatVersion is the envelope version Encode writes for a batch
	// without flags; FormatVersionFlags adds a flags byte after the codec
	// (written only when a flag is set, so a plain batch reads as before).
	FormatVersion      = 1
	FormatVersionFlags = 2
	// MaxBatchBytes bounds an encoded batch.
	MaxBatchBytes = 1 << 20
	// MaxReadings bounds the items (readings and events) in one batch: twice
	// the largest batch a gateway can be configured to send
	// (uplink.batch_size ≤ 10 000; 500 by default). The decoders refuse a
	// larger count before they allocate anything for it, so a batch of a
	// few bytes cannot expand to more than MaxReadings readings (about
	// 1.6 MB of decoded readings; docs/wire.md, "Limits").
	MaxReadings = 20_000
	// MaxBodyBytes bounds a decompressed (inflated) body. A rows body of
	// MaxReadings readings needs at most 22 bytes a reading plus its
	// dictionary (3×(1+255) bytes a series, in practice far less), so a
	// real batch stays well below; a deflate bomb is cut off here.
	MaxBodyBytes = 16 << 20
)

var magic = [2]byte{'F', 'W'}

// deflateLevel trades CPU for size; see docs/benchmarks.md.
var deflateLevel = flate.DefaultCompression

// Encoder encodes batches, reusing its DEFLATE state (about 800 KB, too much
// to allocate per batch on a small gateway). It is not safe for concurrent
// use; the gateway's uplink owns one.
type Encoder struct {
	w *flate.Writer
}

// Encode validates b and encodes it with codec c.
func (e *Encoder) Encode(b *Batch, c Codec) ([]byte, error) {
	return encode(e, b, c)
}

// Encode validates b and encodes it with codec c, with a fresh Encoder.
func Encode(b *Batch, c Codec) ([]byte, error) {
	return encode(&Encoder{}, b, c)
}

// crcTable is CRC-32C (Castagnoli), as used by the edge buffer too.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrMalformed wraps every decoding failure, so callers can count them.
var ErrMalformed = errors.New("malformed batch")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ErrTooLarge wraps (with ErrMalformed) the refusals of a batch that is, or
// would expand to, more than the wire limits allow: more than
// MaxBatchBytes encoded, a count above MaxReadings, a body inflating past
// MaxBodyBytes. The cloud counts them apart from other malformed batches.
var ErrTooLarge = errors.New("batch too large")

func tooLarge(format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", ErrMalformed, ErrTooLarge, fmt.Sprintf(format, args...))
}

// checkCount refuses an item count outside 1 … MaxReadings; it runs before
// anything is allocated for the items.
func checkCount(count uint64) error {
	switch {
	case count == 0:
		return malformed("count 0 is outside 1..%d", MaxReadings)
	case count > MaxReadings:
		return tooLarge("count %d is outside 1..%d", count, MaxReadings)
	}
	return nil
}

func encode(e *Encoder, b *Batch, c Codec) ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	if len(b.Events) > 0 {
		switch c {
		case CodecRows:
			c = CodecItems
		case CodecRowsDeflate:
			c = CodecItemsDeflate
		}
	}
	out := appendEnvelope(make([]byte, 0, 64+16*b.Len()), b, c)
	out = appendString(out, b.Gateway)
	out = appendString(out, b.Site)
	out = appendString(out, b.Stream)
	out = binary.AppendUvarint(out, b.FirstSeq)
	out = binary.AppendUvarint(out, b.Committed)
	out = binary.AppendUvarint(out, uint64(b.Len()))
	var body []byte
	if c == CodecItems || c == CodecItemsDeflate {
		body = binary.AppendUvarint(nil, uint64(len(b.Readings)))
		if len(b.Readings) > 0 {
			body = AppendRows(body, b.Readings)
		}
		body = AppendEvents(body, b.Events)
	} else {
		body = AppendRows(nil, b.Readings)
	}
	switch c {
	case CodecRows, CodecItems:
		out = append(out, body...)
	case CodecRowsDeflate, CodecItemsDeflate:
		buf := bytes.NewBuffer(out)
		if e.w == nil {
			e.w, _ = flate.NewWriter(buf, deflateLevel) // the level is valid: no error
		} else {
			e.w.Reset(buf)
		}
		_, _ = e.w.Write(body) // writes to a bytes.Buffer do not fail
		_ = e.w.Close()
		out = buf.Bytes()
	case CodecCompact:
		return nil, errors.New("codec 5 (compact) is stateful: encode with a CompactEncoder")
	default:
		return nil, fmt.Errorf("unknown codec %d", c)
	}
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crcTable))
	if len(out) > MaxBatchBytes {
		return nil, fmt.Errorf("encoded batch is %d bytes, more than %d; send fewer readings", len(out), MaxBatchBytes)
	}
	return out, nil
}

// appendEnvelope appends the magic, the format version, the codec and, in
// format version 2, the flags.
func appendEnvelope(out []byte, b *Batch, c Codec) []byte {
	if flags := b.flags(); flags != 0 {
		return append(out, magic[0], magic[1], FormatVersionFlags, byte(c), flags)
	}
	return append(out, magic[0], magic[1], FormatVersion, byte(c))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendRows appends the rows body of rs (see docs/wire.md) to out. The
// edge buffer stores readings in this form too. rs must not be empty.
func AppendRows(out []byte, rs []Reading) []byte {
	index := make(map[SeriesKey]uint64, 16)
	var dict []Reading
	for _, r := range rs {
		if _, ok := index[r.Key()]; !ok {
			index[r.Key()] = uint64(len(dict))
			dict = append(dict, r)
		}
	}
	out = binary.AppendUvarint(out, uint64(len(dict)))
	for _, r := range dict {
		out = appendString(out, r.Device)
		out = appendString(out, r.Metric)
		out = appendString(out, r.Unit)
	}
	prev := rs[0].Time.UnixNano()
	out = binary.AppendVarint(out, prev)
	for _, r := range rs {
		t := r.Time.UnixNano()
		out = binary.AppendUvarint(out, index[r.Key()])
		out = binary.AppendVarint(out, t-prev)
		prev = t
		out = binary.LittleEndian.AppendUint64(out, math.Float64bits(r.Value))
		out = append(out, byte(r.Quality)&0x3|byte(r.Clock)<<2)
	}
	return out
}

// Decode parses an encoded batch and validates it. Every failure wraps
// ErrMalformed and says what was wrong.
func Decode(data []byte) (*Batch, error) {
	payload, err := openEnvelope(data)
	if err != nil {
		return nil, err
	}
	codec := Codec(data[3])
	if codec == CodecCompact {
		return nil, malformed("codec 5 (compact) is stateful: decode it with DecodeCompact")
	}
	r := &reader{b: payload[4:]}
	b := &Batch{}
	if data[2] == FormatVersionFlags {
		flags := r.byte("flags")
		if r.err != nil {
			return nil, r.err
		}
		if err := b.setFlags(flags); err != nil {
			return nil, err
		}
	}
	b.Gateway = r.string("gateway")
	b.Site = r.string("site")
	b.Stream = r.string("stream")
	b.FirstSeq = r.uvarint("first sequence")
	b.Committed = r.uvarint("committed sequence")
	count := r.uvarint("count")
	if r.err != nil {
		return nil, r.err
	}
	if err := checkCount(count); err != nil {
		return nil, err
	}
	var body []byte
	switch codec {
	case CodecRows, CodecItems:
		body = r.b
	case CodecRowsDeflate, CodecItemsDeflate:
		fr := flate.NewReader(bytes.NewReader(r.b))
		body, err = io.ReadAll(io.LimitReader(fr, MaxBodyBytes+1))
		if err != nil {
			return nil, malformed("deflate: %v", err)
		}
		if len(body) > MaxBodyBytes {
			return nil, tooLarge("body inflates past %d bytes", MaxBodyBytes)
		}
	default:
		return nil, malformed("unknown codec %d", codec)
	}
	if codec == CodecRows || codec == CodecRowsDeflate {
		if b.Readings, err = DecodeRows(body, int(count)); err != nil {
			return nil, err
		}
	} else if b.Readings, b.Events, err = decodeItems(body, int(count)); err != nil {
		return nil, err
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return b, nil
}

// openEnvelope checks an encoded batch's size, magic, format version and
// checksum, and returns it without the checksum.
func openEnvelope(data []byte) ([]byte, error) {
	if len(data) > MaxBatchBytes {
		return nil, tooLarge("%d bytes, more than %d", len(data), MaxBatchBytes)
	}
	if len(data) < 4+4 {
		return nil, malformed("%d bytes is too short", len(data))
	}
	if data[0] != magic[0] || data[1] != magic[1] {
		return nil, malformed("does not start with \"FW\" (got % x)", data[:2])
	}
	if data[2] != FormatVersion && data[2] != FormatVersionFlags {
		return nil, malformed("format version %d is not supported (this build reads %d and %d)", data[2], FormatVersion, FormatVersionFlags)
	}
	payload, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if got := crc32.Checksum(payload, crcTable); got != sum {
		return nil, malformed("checksum %08x does not match %08x", got, sum)
	}
	return payload, nil
}

// DecodeRows decodes a rows body holding exactly count readings. Errors wrap
// ErrMalformed. The readings are not validated.
func DecodeRows(body []byte, count int) ([]Reading, error) {
	r := &reader{b: body}
	rs, err := decodeRows(r, count)
	if err != nil {
		return nil, err
	}
	if len(r.b) != 0 {
		return nil, malformed("%d bytes left after %d readings", len(r.b), count)
	}
	return rs, nil
}

// decodeItems decodes an items body (rows, then events) of count items.
func decodeItems(body []byte, count int) ([]Reading, []Event, error) {
	r := &reader{b: body}
	n := r.uvarint("reading count")
	if r.err != nil {
		return nil, nil, r.err
	}
	if n > uint64(count) {
		return nil, nil, malformed("%d readings in a batch of %d items", n, count)
	}
	var rs []Reading
	if n > 0 {
		var err error
		if rs, err = decodeRows(r, int(n)); err != nil {
			return nil, nil, err
		}
	}
	es, err := decodeEvents(r, count-int(n))
	if err != nil {
		return nil, nil, err
	}
	if len(r.b) != 0 {
		return nil, nil, malformed("%d bytes left after %d items", len(r.b), count)
	}
	return rs, es, nil
}

// decodeRows consumes a rows section of count readings from r.
func decodeRows(r *reader, count int) ([]Reading, error) {
	nseries := r.uvarint("series count")
	if r.err == nil && (nseries == 0 || nseries > uint64(count)) {
		return nil, malformed("series count %d is outside 1..%d", nseries, count)
	}
	if r.err != nil {
		return nil, r.err
	}
	dict := make([]Reading, nseries)
	for i := range dict {
		dict[i].Device = r.string("device")
		dict[i].Metric = r.string("metric")
		dict[i].Unit = r.string("unit")
	}
	t := r.varint("base time")
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) < count*11 {
		return nil, malformed("body has %d bytes left for %d readings", len(r.b), count)
	}
	rs := make([]Reading, count)
	for i := range rs {
		idx := r.uvarint("series index")
		dt := r.varint("time delta")
		if r.err != nil {
			return nil, r.err
		}
		if idx >= nseries {
			return nil, malformed("reading %d: series index %d is outside the dictionary of %d", i, idx, nseries)
		}
		if (dt > 0 && t > math.MaxInt64-dt) || (dt < 0 && t < math.MinInt64-dt) {
			return nil, malformed("reading %d: time overflows", i)
		}
		t += dt
		if len(r.b) < 9 {
			return nil, malformed("reading %d is cut short", i)
		}
		rd := dict[idx]
		rd.Time = time.Unix(0, t).UTC()
		rd.Value = math.Float64frombits(binary.LittleEndian.Uint64(r.b))
		flags := r.b[8]
		r.b = r.b[9:]
		if flags>>5 != 0 {
			return nil, malformed("reading %d: unknown flag bits %08b", i, flags)
		}
		rd.Quality = Quality(flags & 0x3)
		rd.Clock = ClockQuality(flags >> 2)
		rs[i] = rd
	}
	return rs, nil
}

// reader consumes varints and strings, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = malformed("%s: bad or missing varint", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = malformed("%s: bad or missing varint", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = malformed("%s: missing", what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) string(what string) string {
	n := r.uvarint(what + " length")
	if r.err != nil {
		return ""
	}
	if n > 255 || n > uint64(len(r.b)) {
		r.err = malformed("%s: length %d is over 255 or past the end", what, n)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
