// Package buffer is the gateway's crash-safe store of readings waiting for
// the cloud's acknowledgement: an append-only log of checksummed records in
// numbered segment files, never rewritten in place (flash friendly).
//
// Every reading gets the next sequence number of the buffer's stream. A
// reading leaves the buffer only through Trim, which the uplink calls with
// what the cloud has acknowledged, or when the byte budget forces the oldest
// segment out (counted in Stats.Dropped and logged).
//
// On disk, in Dir:
//
//	stream                 the stream id, created with the directory
//	acked                  the highest trimmed sequence (written by rename)
//	00000000000000000001.seg, …   segments named by their first sequence
//
// A segment is a run of records:
//
//	uint32 payload length | uint32 CRC-32C of payload | payload
//	payload = uvarint first seq | uvarint count | rows body (docs/wire.md)
//
// After a crash, Open keeps every record up to the first one that is torn or
// fails its checksum, truncates the rest of that segment, and reports how
// many bytes it cut (Stats.TruncatedBytes).
package buffer

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Fsync policies.
const (
	// FsyncAlways syncs every append before it returns: a reading that
	// Append accepted survives a power cut.
	FsyncAlways = "always"
	// FsyncOff leaves syncing to the operating system (tests, tmpfs).
	FsyncOff = "off"
)

// Options configure a buffer.
type Options struct {
	Dir          string
	MaxBytes     int64  // total segment bytes; beyond it the oldest segment is dropped
	SegmentBytes int64  // a segment is closed once it reaches this size
	Fsync        string // FsyncAlways or FsyncOff
	Logger       *slog.Logger
}

// Stats are the buffer's counters and levels.
type Stats struct {
	Readings       uint64 // held, not yet trimmed
	Bytes          int64  // on disk in segments
	Segments       int
	Appended       uint64 // readings appended since Open
	Trimmed        uint64 // readings trimmed since Open (acknowledged)
	Dropped        uint64 // readings dropped unacknowledged since Open (byte budget)
	TruncatedBytes int64  // cut by recovery at Open
}

const (
	recordHeader = 8
	maxRecord    = 16 << 20
	segSuffix    = ".seg"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrClosed is returned by operations on a closed buffer.
var ErrClosed = errors.New("buffer is closed")

// Buffer is safe for concurrent use.
type Buffer struct {
	opts   Options
	log    *slog.Logger
	stream string

	mu     sync.Mutex
	segs   []*segment // ordered by first sequence; the last is written to
	w      *os.File   // the last segment, open for appending
	next   uint64     // sequence of the next appended reading
	acked  uint64     // every sequence ≤ acked is trimmed
	stats  Stats
	notify chan struct{}
	closed bool
	broken error // set when a failed write could not be undone
	cur    cursor
}

type segment struct {
	first uint64 // sequence of its first reading
	last  uint64 // sequence of its last reading; first-1 when empty
	path  string
	size  int64
}

// cursor remembers where the last Read stopped, so sequential reads do not
// rescan a segment.
type cursor struct {
	f    *os.File
	seg  *segment
	off  int64
	next uint64
}

// Open opens or creates the buffer in opts.Dir and recovers it.
func Open(opts Options) (*Buffer, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 4 << 20
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 256 << 20
	}
	if opts.Fsync == "" {
		opts.Fsync = FsyncAlways
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create buffer directory: %w", err)
	}
	b := &Buffer{opts: opts, log: opts.Logger, notify: make(chan struct{})}
	var err error
	if b.stream, err = b.loadStream(); err != nil {
		return nil, err
	}
	if b.acked, err = b.loadAcked(); err != nil {
		return nil, err
	}
	if err := b.recover(); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Buffer) loadStream() (string, error) {
	path := filepath.Join(b.opts.Dir, "stream")
	data, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(data))
		if err := telemetry.CheckName("stream", s); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("cannot read stream id: %w", err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails on Linux
	s := "s" + time.Now().UTC().Format("20060102") + "-" + hex.EncodeToString(rnd[:])
	if err := writeFileSync(path, []byte(s+"\n")); err != nil {
		return "", fmt.Errorf("cannot write stream id: %w", err)
	}
	return s, nil
}

func (b *Buffer) loadAcked() (uint64, error) {
	data, err := os.ReadFile(filepath.Join(b.opts.Dir, "acked"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cannot read ack mark: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("ack mark %q: %w", data, err)
	}
	return n, nil
}

// writeFileSync writes a small file atomically: temp file, fsync, rename,
// fsync of the directory.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// recover scans every segment, truncates torn tails, and opens the last
// segment for appending.
func (b *Buffer) recover() error {
	entries, err := os.ReadDir(b.opts.Dir)
	if err != nil {
		return fmt.Errorf("cannot list buffer: %w", err)
	}
	var firsts []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || n == 0 {
			b.log.Warn("ignoring stray file in buffer", "file", name)
			continue
		}
		firsts = append(firsts, n)
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	b.next = b.acked + 1
	for _, first := range firsts {
		s := &segment{first: first, path: filepath.Join(b.opts.Dir, segName(first))}
		if err := b.scan(s); err != nil {
			return err
		}
		if s.last < s.first { // empty segment: nothing to keep
			if err := os.Remove(s.path); err != nil {
				return fmt.Errorf("cannot remove empty segment: %w", err)
			}
			continue
		}
		if s.last <= b.acked { // fully acknowledged before the crash
			if err := os.Remove(s.path); err != nil {
				return fmt.Errorf("cannot remove acknowledged segment: %w", err)
			}
			continue
		}
		if s.first < b.next && len(b.segs) > 0 {
			return fmt.Errorf("segment %s overlaps the one before it; the buffer is damaged", s.path)
		}
		if s.first > b.next && b.next > b.acked+1 {
			b.log.Error("readings missing between segments", "from", b.next, "to", s.first-1)
			b.stats.Dropped += s.first - b.next
		}
		b.segs = append(b.segs, s)
		b.next = s.last + 1
		b.stats.Bytes += s.size
	}
	if b.acked+1 > b.next {
		b.next = b.acked + 1
	}
	for _, s := range b.segs {
		b.stats.Readings += s.last - max(s.first, b.acked+1) + 1
	}
	if b.stats.TruncatedBytes > 0 {
		b.log.Warn("buffer recovered after an unclean stop", "truncated_bytes", b.stats.TruncatedBytes)
	}
	return b.openTail()
}

// scan validates every record of s, truncating at the first bad one.
func (b *Buffer) scan(s *segment) error {
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("cannot open segment: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	s.last = s.first - 1
	var off int64
	var hdr [recordHeader]byte
	for off < info.Size() {
		first, count, _, n, err := readRecord(f, off, &hdr, nil)
		if err == nil && first != s.last+1 {
			err = fmt.Errorf("record starts at %d, expected %d", first, s.last+1)
		}
		if err != nil {
			cut := info.Size() - off
			b.log.Warn("truncating damaged buffer segment", "segment", s.path, "offset", off, "bytes", cut, "err", err)
			if err := f.Truncate(off); err != nil {
				return fmt.Errorf("cannot truncate damaged segment: %w", err)
			}
			if err := f.Sync(); err != nil {
				return err
			}
			b.stats.TruncatedBytes += cut
			break
		}
		s.last = first + count - 1
		off += n
	}
	s.size = off
	return nil
}

// readRecord reads the record at off. With body == nil it only checks it.
// events says whether the record holds events rather than readings.
func readRecord(f *os.File, off int64, hdr *[recordHeader]byte, body *[]byte) (first, count uint64, events bool, n int64, err error) {
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return 0, 0, false, 0, fmt.Errorf("torn record header: %w", err)
	}
	size := binary.BigEndian.Uint32(hdr[0:])
	sum := binary.BigEndian.Uint32(hdr[4:])
	if size == 0 || size > maxRecord {
		return 0, 0, false, 0, fmt.Errorf("record length %d is impossible", size)
	}
	payload := make([]byte, size)
	if _, err := f.ReadAt(payload, off+recordHeader); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, 0, false, 0, fmt.Errorf("torn record: %w", err)
		}
		return 0, 0, false, 0, err
	}
	if crc32.Checksum(payload, crcTable) != sum {
		return 0, 0, false, 0, errors.New("record checksum mismatch")
	}
	first, k := binary.Uvarint(payload)
	if k <= 0 || first == 0 {
		return 0, 0, false, 0, errors.New("record has no sequence")
	}
	p := payload[k:]
	count, k2 := binary.Uvarint(p)
	if k2 <= 0 || count > maxRecord {
		return 0, 0, false, 0, errors.New("record has no count")
	}
	p = p[k2:]
	if count == 0 { // an events record: 0, then the real count
		events = true
		if count, k2 = binary.Uvarint(p); k2 <= 0 || count == 0 || count > maxRecord {
			return 0, 0, false, 0, errors.New("events record has no count")
		}
		p = p[k2:]
	}
	if body != nil {
		*body = p
	}
	return first, count, events, recordHeader + int64(size), nil
}

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

func (b *Buffer) openTail() error {
	if n := len(b.segs); n > 0 && b.segs[n-1].size < b.opts.SegmentBytes {
		f, err := os.OpenFile(b.segs[n-1].path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("cannot open segment for appending: %w", err)
		}
		b.w = f
		return nil
	}
	return b.rotate()
}

// rotate starts a new segment at b.next.
func (b *Buffer) rotate() error {
	if b.w != nil {
		if err := b.w.Close(); err != nil {
			return err
		}
		b.w = nil
	}
	s := &segment{first: b.next, last: b.next - 1, path: filepath.Join(b.opts.Dir, segName(b.next))}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("cannot create segment: %w", err)
	}
	if b.opts.Fsync == FsyncAlways {
		if err := syncDir(b.opts.Dir); err != nil {
			f.Close()
			return err
		}
	}
	b.w = f
	b.segs = append(b.segs, s)
	b.stats.Segments = len(b.segs)
	return nil
}

// Stream is the buffer's stream id.
func (b *Buffer) Stream() string { return b.stream }

// Append stores rs durably (as the fsync policy says) and returns the
// sequence of the first. rs must be valid readings.
func (b *Buffer) Append(rs []telemetry.Reading) (uint64, error) {
	if len(rs) == 0 {
		return 0, errors.New("nothing to append")
	}
	return b.appendRecord(len(rs), false, func(p []byte) []byte { return telemetry.AppendRows(p, rs) })
}

// AppendEvents stores es like Append stores readings; events and readings
// share one sequence.
func (b *Buffer) AppendEvents(es []telemetry.Event) (uint64, error) {
	if len(es) == 0 {
		return 0, errors.New("nothing to append")
	}
	return b.appendRecord(len(es), true, func(p []byte) []byte { return telemetry.AppendEvents(p, es) })
}

// appendRecord writes one record of count items whose body encode appends.
// An events record is marked by a count of 0 followed by the real count (a
// readings record never has 0, so buffers written before events existed
// still read).
func (b *Buffer) appendRecord(count int, events bool, encode func([]byte) []byte) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, ErrClosed
	}
	first := b.next
	payload := binary.AppendUvarint(make([]byte, recordHeader, recordHeader+32+24*count), first)
	if events {
		payload = binary.AppendUvarint(payload, 0)
	}
	payload = binary.AppendUvarint(payload, uint64(count))
	payload = encode(payload)
	rec := payload
	body := rec[recordHeader:]
	if len(body) > maxRecord {
		return 0, fmt.Errorf("record of %d bytes is too large", len(body))
	}
	binary.BigEndian.PutUint32(rec[0:], uint32(len(body)))
	binary.BigEndian.PutUint32(rec[4:], crc32.Checksum(body, crcTable))
	if b.broken != nil {
		return 0, b.broken
	}
	tail := b.segs[len(b.segs)-1]
	if _, err := b.w.Write(rec); err != nil {
		// Cut a partial record so that no record ever follows a torn one;
		// if even that fails, refuse appends until a restart recovers.
		if terr := b.w.Truncate(tail.size); terr != nil {
			b.broken = fmt.Errorf("buffer unusable until restart after a failed write: %w", err)
		}
		return 0, fmt.Errorf("cannot append to buffer: %w", err)
	}
	if b.opts.Fsync == FsyncAlways {
		if err := b.w.Sync(); err != nil {
			return 0, fmt.Errorf("cannot sync buffer: %w", err)
		}
	}
	tail.size += int64(len(rec))
	tail.last = first + uint64(count) - 1
	b.next = tail.last + 1
	b.stats.Bytes += int64(len(rec))
	b.stats.Readings += uint64(count)
	b.stats.Appended += uint64(count)
	if tail.size >= b.opts.SegmentBytes {
		if err := b.rotate(); err != nil {
			return first, fmt.Errorf("cannot start a new segment: %w", err)
		}
	}
	b.enforceBudget()
	close(b.notify)
	b.notify = make(chan struct{})
	return first, nil
}

// enforceBudget drops whole oldest segments while the buffer is over its
// byte budget, keeping the segment being written.
func (b *Buffer) enforceBudget() {
	for b.stats.Bytes > b.opts.MaxBytes && len(b.segs) > 1 {
		s := b.segs[0]
		lost := uint64(0)
		if s.last > b.acked {
			lost = s.last - max(s.first, b.acked+1) + 1
		}
		if err := b.removeFirst(); err != nil {
			b.log.Error("cannot drop oldest buffer segment", "segment", s.path, "err", err)
			return
		}
		if lost > 0 {
			b.stats.Dropped += lost
			b.stats.Readings -= lost
			b.log.Error("buffer full: dropped oldest unacknowledged readings",
				"readings", lost, "from_seq", max(s.first, b.acked+1), "to_seq", s.last, "max_bytes", b.opts.MaxBytes)
			b.acked = s.last
			if err := writeFileSync(filepath.Join(b.opts.Dir, "acked"), []byte(strconv.FormatUint(b.acked, 10)+"\n")); err != nil {
				b.log.Error("cannot write ack mark", "err", err)
			}
		}
	}
}

func (b *Buffer) removeFirst() error {
	s := b.segs[0]
	if b.cur.seg == s {
		b.resetCursor()
	}
	if err := os.Remove(s.path); err != nil {
		return err
	}
	b.segs = b.segs[1:]
	b.stats.Bytes -= s.size
	b.stats.Segments = len(b.segs)
	return nil
}

// Notify returns a channel that is closed at the next Append.
func (b *Buffer) Notify() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.notify
}

// Acked is the highest trimmed sequence: everything up to it is gone.
func (b *Buffer) Acked() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.acked
}

// Next is the sequence the next appended reading will get.
func (b *Buffer) Next() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.next
}

// Stats returns the counters.
func (b *Buffer) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.Segments = len(b.segs)
	return s
}

// Chunk is a run of consecutive items read from the buffer: readings and
// events that together have the sequences First … First+Len()-1.
type Chunk struct {
	First    uint64
	Readings []telemetry.Reading
	Events   []telemetry.Event
}

// Len is the number of items in c.
func (c Chunk) Len() int { return len(c.Readings) + len(c.Events) }

// Read returns up to limit consecutive items starting at the first
// sequence ≥ from that the buffer holds. The chunk is empty when there are
// none at or after from.
func (b *Buffer) Read(from uint64, limit int) (Chunk, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return Chunk{}, ErrClosed
	}
	from = maxU(from, b.acked+1)
	if from >= b.next || limit <= 0 {
		return Chunk{}, nil
	}
	if b.cur.f == nil || b.cur.next != from {
		if err := b.seek(from); err != nil {
			return Chunk{}, err
		}
	}
	var out Chunk
	var hdr [recordHeader]byte
	for out.Len() < limit && b.cur.seg != nil {
		s := b.cur.seg
		if b.cur.off >= s.size {
			if !b.advance() {
				break
			}
			continue
		}
		var body []byte
		first, count, events, n, err := readRecord(b.cur.f, b.cur.off, &hdr, &body)
		if err != nil {
			b.resetCursor()
			return Chunk{}, fmt.Errorf("buffer segment %s at %d: %w", s.path, b.cur.off, err)
		}
		if first+count <= b.cur.next { // wholly before the cursor
			b.cur.off += n
			continue
		}
		if out.Len() > 0 && first != out.First+uint64(out.Len()) {
			break // a gap: the caller asks again from after it
		}
		if out.Len()+int(count) > limit && out.Len() > 0 {
			break // keep records whole where we can
		}
		skip := 0
		if first < b.cur.next {
			skip = int(b.cur.next - first)
		}
		if out.Len() == 0 {
			out.First = first + uint64(skip)
		}
		take := min(int(count)-skip, limit-out.Len())
		if events {
			es, err := telemetry.DecodeEvents(body, int(count))
			if err != nil {
				b.resetCursor()
				return Chunk{}, fmt.Errorf("buffer segment %s at %d: %w", s.path, b.cur.off, err)
			}
			out.Events = append(out.Events, es[skip:skip+take]...)
		} else {
			rs, err := telemetry.DecodeRows(body, int(count))
			if err != nil {
				b.resetCursor()
				return Chunk{}, fmt.Errorf("buffer segment %s at %d: %w", s.path, b.cur.off, err)
			}
			out.Readings = append(out.Readings, rs[skip:skip+take]...)
		}
		b.cur.next = out.First + uint64(out.Len())
		if skip+take == int(count) {
			b.cur.off += n
		}
	}
	return out, nil
}

// seek positions the cursor at the segment holding from (or the first after).
func (b *Buffer) seek(from uint64) error {
	b.resetCursor()
	i := sort.Search(len(b.segs), func(i int) bool { return b.segs[i].last >= from })
	if i == len(b.segs) {
		return nil
	}
	return b.openCursor(b.segs[i], from)
}

func (b *Buffer) openCursor(s *segment, next uint64) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("cannot open segment for reading: %w", err)
	}
	b.cur = cursor{f: f, seg: s, next: next}
	return nil
}

// advance moves the cursor to the next segment; false at the end.
func (b *Buffer) advance() bool {
	for i, s := range b.segs {
		if s == b.cur.seg && i+1 < len(b.segs) {
			next := b.cur.next
			b.resetCursor()
			if err := b.openCursor(b.segs[i+1], maxU(next, b.segs[i+1].first)); err != nil {
				b.log.Error("buffer read", "err", err)
				return false
			}
			return true
		}
	}
	return false
}

func (b *Buffer) resetCursor() {
	if b.cur.f != nil {
		b.cur.f.Close()
	}
	b.cur = cursor{}
}

// Trim forgets every reading with a sequence ≤ through: the cloud has
// stored them. Whole segments are deleted; the mark is persisted so a
// restart does not resend them.
func (b *Buffer) Trim(through uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	through = min(through, b.next-1)
	if through <= b.acked {
		return nil
	}
	for _, s := range b.segs {
		if s.last < b.acked+1 || s.first > through {
			continue
		}
		n := min(s.last, through) - max(s.first, b.acked+1) + 1
		b.stats.Trimmed += n
		b.stats.Readings -= n
	}
	b.acked = through
	if err := writeFileSync(filepath.Join(b.opts.Dir, "acked"), []byte(strconv.FormatUint(through, 10)+"\n")); err != nil {
		return fmt.Errorf("cannot write ack mark: %w", err)
	}
	for len(b.segs) > 1 && b.segs[0].last <= through {
		if err := b.removeFirst(); err != nil {
			return fmt.Errorf("cannot remove acknowledged segment: %w", err)
		}
	}
	if len(b.segs) == 1 && b.segs[0].last <= through && b.segs[0].size > 0 {
		// The only segment is fully acknowledged: start afresh.
		old := b.segs[0]
		if err := b.rotate(); err != nil {
			return err
		}
		b.segs = b.segs[1:]
		if b.cur.seg == old {
			b.resetCursor()
		}
		if err := os.Remove(old.path); err != nil {
			return fmt.Errorf("cannot remove acknowledged segment: %w", err)
		}
		b.stats.Bytes -= old.size
	}
	return nil
}

// Close closes the files. Data already appended stays on disk.
func (b *Buffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.resetCursor()
	if b.w != nil {
		if err := b.w.Sync(); err != nil {
			b.w.Close()
			return err
		}
		return b.w.Close()
	}
	return nil
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}
