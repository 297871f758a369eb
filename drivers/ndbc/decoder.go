package ndbc

import (
	"bytes"
	"maps"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Refusal kinds counted in stream.Stats.Errors.
const (
	KindHeader   = "header"    // a document refused for its header lines, once per document
	KindNoHeader = "no_header" // rows without a header, once per document
	KindColumns  = "columns"   // a row with the wrong number of columns
	KindNumber   = "number"    // a value that is neither MM nor a decimal number
	KindDate     = "date"      // an impossible date, or more than a day ahead
	KindOverlong = "overlong"  // a line longer than maxLine
	KindCut      = "cut"       // a line cut by Start
)

// maxLine bounds a line; a realtime2 row is about 100 bytes.
const maxLine = 1024

// maxAhead is how far a row's time may be ahead of its arrival.
const maxAhead = 24 * time.Hour

// Document states.
const (
	noHeader  = iota // no header line yet in this document
	wantUnits        // column names read, units line expected
	ready            // header accepted, rows are decoded
	refused          // document refused, rows skipped up to the next header
)

// Decoder decodes NDBC realtime2 standard meteorological documents. It
// implements stream.Decoder and is used by one goroutine.
type Decoder struct {
	cfg    Config
	device string
	cols   []column
	want   []bool // per entry of cols: reported

	line     []byte // the unfinished line
	skipping bool   // dropping the rest of an overlong line

	state  uint8
	colOf  []int     // per file column after the time columns: index in cols
	factor []float64 // per file column after the time columns: unit factor

	watermark, pending time.Time // newest row emitted before / in this document
	stats              stream.Stats

	fields [][]byte // scratch: the current row's fields
	vals   []float64
	has    []bool
}

var _ stream.Decoder = (*Decoder)(nil)

// New returns a decoder for device. cfg should have been normalized and
// checked; New normalizes a copy again.
func New(cfg Config, device string) *Decoder {
	cfg.Columns = append([]string(nil), cfg.Columns...)
	cfg.Normalize()
	d := &Decoder{cfg: cfg, device: device, cols: columns(), line: make([]byte, 0, 128)}
	d.want = make([]bool, len(d.cols))
	for i, c := range d.cols {
		d.want[i] = len(cfg.Columns) == 0
		for _, name := range cfg.Columns {
			d.want[i] = d.want[i] || name == c.name
		}
	}
	return d
}

// Start begins a new poll: a line cut by the reopening is counted and
// dropped, and rows emitted so far become the watermark.
func (d *Decoder) Start(now time.Time) stream.Output {
	if len(d.line) > 0 {
		d.stats.Count(KindCut)
	}
	d.line, d.skipping = d.line[:0], false
	d.commit()
	d.state = noHeader
	return stream.Output{}
}

// Feed decodes the complete lines in chunk, keeping an unfinished one for
// the next call.
func (d *Decoder) Feed(chunk []byte, now time.Time) stream.Output {
	var out stream.Output
	for len(chunk) > 0 {
		nl := bytes.IndexByte(chunk, '\n')
		part := chunk
		if nl >= 0 {
			part, chunk = chunk[:nl], chunk[nl+1:]
		} else {
			chunk = nil
		}
		if !d.skipping {
			if len(d.line)+len(part) > maxLine {
				d.stats.Count(KindOverlong)
				d.line, d.skipping = d.line[:0], true
			} else {
				d.line = append(d.line, part...)
			}
		}
		if nl >= 0 {
			if !d.skipping {
				d.decodeLine(d.line, now, &out)
			}
			d.line, d.skipping = d.line[:0], false
		}
	}
	return out
}

// Tick does nothing: the gateway schedules the polls.
func (d *Decoder) Tick(now time.Time) stream.Output { return stream.Output{} }

// Stats returns a copy of the counters.
func (d *Decoder) Stats() stream.Stats {
	s := d.stats
	s.Errors = maps.Clone(d.stats.Errors)
	return s
}

// commit makes the newest row emitted in the document the watermark.
func (d *Decoder) commit() {
	if d.pending.After(d.watermark) {
		d.watermark = d.pending
	}
}

// decodeLine handles one complete line.
func (d *Decoder) decodeLine(line []byte, now time.Time, out *stream.Output) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	if line[0] == '#' {
		d.headerLine(line[1:])
		return
	}
	switch d.state {
	case ready:
		d.row(line, now, out)
	case wantUnits:
		d.stats.Count(KindHeader) // the units line is missing
		d.state = refused
	case noHeader:
		d.stats.Count(KindNoHeader)
		d.state = refused
	}
}

// split cuts a line into whitespace-separated fields, into d.fields.
func (d *Decoder) split(line []byte) [][]byte {
	f := d.fields[:0]
	for {
		for len(line) > 0 && (line[0] == ' ' || line[0] == '\t' || line[0] == '\r') {
			line = line[1:]
		}
		if len(line) == 0 {
			break
		}
		end := 0
		for end < len(line) && line[end] != ' ' && line[end] != '\t' && line[end] != '\r' {
			end++
		}
		f = append(f, line[:end])
		line = line[end:]
	}
	d.fields = f
	return f
}

// headerLine handles a line starting with '#': the column names ("#YY …")
// begin a new document; the units ("#yr …") must follow them.
func (d *Decoder) headerLine(line []byte) {
	f := d.split(line)
	switch {
	case len(f) > 0 && string(f[0]) == "YY":
		d.commit()
		d.state = refused
		if d.names(f) {
			d.state = wantUnits
		} else {
			d.stats.Count(KindHeader)
		}
	case len(f) > 0 && string(f[0]) == "yr" && d.state == wantUnits:
		if d.units(f) {
			d.state = ready
		} else {
			d.stats.Count(KindHeader)
			d.state = refused
		}
	case d.state != refused:
		d.stats.Count(KindHeader)
		d.state = refused
	}
}

// names reads the column names line: the five time columns, then known
// data columns, each at most once.
func (d *Decoder) names(f [][]byte) bool {
	tc := timeColumns()
	if len(f) <= len(tc) || len(f) > len(tc)+len(d.cols) {
		return false
	}
	for i, c := range tc {
		if string(f[i]) != c[0] {
			return false
		}
	}
	d.colOf = d.colOf[:0]
	used := make([]bool, len(d.cols))
	for _, name := range f[len(tc):] {
		j := -1
		for k, c := range d.cols {
			if c.name == string(name) {
				j = k
			}
		}
		if j < 0 || used[j] {
			return false
		}
		used[j] = true
		d.colOf = append(d.colOf, j)
	}
	return true
}

// units reads the units line and checks it against the names.
func (d *Decoder) units(f [][]byte) bool {
	tc := timeColumns()
	if len(f) != len(tc)+len(d.colOf) {
		return false
	}
	for i, c := range tc {
		if string(f[i]) != c[1] {
			return false
		}
	}
	d.factor = d.factor[:0]
	for i, j := range d.colOf {
		factor, ok := d.cols[j].units[string(f[len(tc)+i])]
		if !ok {
			return false
		}
		d.factor = append(d.factor, factor)
	}
	return true
}

// row decodes one observation.
func (d *Decoder) row(line []byte, now time.Time, out *stream.Output) {
	f := d.split(line)
	nt := len(timeColumns())
	if len(f) != nt+len(d.colOf) {
		d.stats.Count(KindColumns)
		return
	}
	t, ok := rowTime(f[:nt])
	if !ok || t.After(now.Add(maxAhead)) {
		d.stats.Count(KindDate)
		return
	}
	d.vals, d.has = d.vals[:0], d.has[:0]
	for _, b := range f[nt:] {
		v, has := 0.0, false
		if string(b) != "MM" {
			if v, has = parseDecimal(b); !has {
				d.stats.Count(KindNumber)
				return
			}
		}
		d.vals, d.has = append(d.vals, v), append(d.has, has)
	}
	if !t.After(d.watermark) || (d.cfg.Backfill > 0 && t.Before(now.Add(-d.cfg.Backfill))) {
		return // emitted by an earlier poll, or older than the backfill
	}
	for i, j := range d.colOf {
		if !d.has[i] || !d.want[j] {
			continue
		}
		c := d.cols[j]
		v := scale(d.vals[i], d.factor[i])
		q := telemetry.Good
		if v < c.lo || v > c.hi {
			q = telemetry.Bad
		}
		out.Readings = append(out.Readings, telemetry.Reading{
			Device: d.device, Metric: c.metric, Value: v, Unit: c.unit,
			Time: t, Quality: q, Clock: telemetry.ClockUnknown,
		})
	}
	d.stats.Accepted(now)
	if t.After(d.pending) {
		d.pending = t
	}
}

// rowTime reads YY MM DD hh mm; a two-digit year (historical files) is
// 19yy or 20yy around 1970.
func rowTime(f [][]byte) (time.Time, bool) {
	var n [5]int
	for i, b := range f {
		if len(b) == 0 || len(b) > 4 || (i > 0 && len(b) > 2) {
			return time.Time{}, false
		}
		for _, c := range b {
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			n[i] = n[i]*10 + int(c-'0')
		}
	}
	y := n[0]
	switch {
	case len(f[0]) == 2 && y >= 70:
		y += 1900
	case len(f[0]) == 2:
		y += 2000
	case len(f[0]) != 4 || y < 1970:
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(n[1]), n[2], n[3], n[4], 0, 0, time.UTC)
	if n[1] < 1 || n[1] > 12 || t.Day() != n[2] || t.Hour() != n[3] || t.Minute() != n[4] {
		return time.Time{}, false
	}
	return t, true
}
