// Package buffer is the gateway's crash-safe store of readings waiting for
// the cloud's acknowledgement: an append-only log of checksummed records in
// numbered segment files, never rewritten in place (flash friendly).
//
// Every item (reading, event, gap record) gets the next sequence number of
// the buffer's stream. An item leaves the buffer only once every consumer
// has confirmed it — the MQTT uplink through Trim, with what the cloud has
// acknowledged, and each HJ 212 uplink through its Consumer's cursor
// (consumer.go) — or when the byte budget forces it out under the overflow
// policy: then the exact count and time span of what the cloud lost is
// appended as a gap event, which travels upstream like any other item, and
// each consumer counts what it lost.
//
// Durability follows the fsync policy. With FsyncAlways an Append returns
// once its record is on disk; appends that arrive together (several buses
// and stream devices) share one fsync (group commit). FsyncInterval syncs
// in the background every Options.SyncEvery; FsyncOff leaves it to the
// operating system.
//
// On disk, in Dir:
//
//	stream                 the stream id, created with the directory
//	acked                  the primary consumer's (the MQTT uplink's) cursor:
//	                       the highest sequence below which the cloud has
//	                       acknowledged everything (written by rename, at
//	                       most every Options.AckMarkEvery: after a crash a
//	                       few acknowledged items are sent again, which the
//	                       cloud recognises)
//	cursor-<name>          the same for each secondary consumer (an HJ 212
//	                       uplink, Options.Consumers); an item leaves the
//	                       buffer once every consumer has confirmed it
//	note-<name>            what that consumer's uplink keeps with its cursor
//	                       (Consumer.SetNote: the last aggregate period sent)
//	pending-gap            items refused under drop_newest, not yet recorded
//	00000000000000000001.seg, …   segments named by their first sequence
//
// A segment is a run of records (see record.go). After a crash, Open keeps
// every record up to the first one that is torn or fails its checksum,
// truncates the rest of that segment, and reports how many bytes it cut
// (Stats.TruncatedBytes).
package buffer

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/atomicfile"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Fsync policies.
const (
	// FsyncAlways syncs every append before it returns: an item that
	// Append accepted survives a power cut. Concurrent appends share one
	// sync.
	FsyncAlways = "always"
	// FsyncInterval syncs every Options.SyncEvery in the background: a
	// power cut loses at most that much.
	FsyncInterval = "interval"
	// FsyncOff leaves syncing to the operating system (tests, tmpfs).
	FsyncOff = "off"
)

// Overflow policies: what happens when the byte budget is reached.
const (
	// OverflowDropOldest deletes the oldest segment (the default): recent
	// data matters most for warnings.
	OverflowDropOldest = "drop_oldest"
	// OverflowDropNewest refuses new items until the uplink frees room:
	// the record of the past is kept whole.
	OverflowDropNewest = "drop_newest"
)

// Options configure a buffer.
type Options struct {
	Dir          string
	MaxBytes     int64         // total segment bytes; beyond it the overflow policy applies
	SegmentBytes int64         // a segment is closed once it reaches this size
	Fsync        string        // FsyncAlways, FsyncInterval or FsyncOff
	SyncEvery    time.Duration // for FsyncInterval (default 1s)
	Overflow     string        // OverflowDropOldest (default) or OverflowDropNewest
	// GapDevice is the device named by gap and buffer events: the
	// gateway's id.
	GapDevice string
	// Clock, if set, gives the clock quality of a buffer event's time (the
	// gateway's clock.Source); ClockUnknown otherwise.
	Clock func() telemetry.ClockQuality
	// AckMarkEvery bounds how often the trim mark and the consumers'
	// cursors are written (default 5s).
	AckMarkEvery time.Duration
	// Consumers are the secondary consumers (HJ 212 uplinks), each with a
	// durable cursor of its own (consumer.go). An item leaves the buffer
	// only when the primary consumer (Trim, Acked: the MQTT uplink) and
	// every one of these have confirmed it. Names are telemetry names.
	Consumers []string
	// RetainBytes keeps segments every consumer has confirmed, oldest
	// deleted first, while the bytes on disk stay within it, so that HJ 212
	// platforms' history requests can be answered (ReadHistory). 0 deletes
	// them at once. Retained bytes do not count towards the fill level.
	RetainBytes int64
	// KeepAcked keeps segments every consumer has confirmed for this long
	// after their last item was confirmed (keep.go), within the budget:
	// what a cloud restored from a backup may ask for again (Rewind). 0
	// keeps none. Kept bytes do not count towards the fill level.
	KeepAcked time.Duration
	// Now is the clock of the KeepAcked window; nil is time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Stats are the buffer's counters and levels.
type Stats struct {
	Readings       uint64 // items the primary consumer has not confirmed (awaiting the cloud's ack)
	Held           uint64 // items on disk that some consumer has not confirmed
	Bytes          int64  // on disk in segments
	RetainedBytes  int64  // of Bytes, segments every consumer confirmed, kept for history (Options.RetainBytes)
	Segments       int
	Appended       uint64 // items appended since Open (gap records included)
	Trimmed        uint64 // items trimmed since Open (confirmed by every consumer)
	Dropped        uint64 // items dropped unacknowledged by the primary since Open (overflow policy)
	Gaps           uint64 // gap events recorded since Open
	Refused        uint64 // items refused under drop_newest since Open (also in Dropped)
	Syncs          uint64 // fsyncs since Open
	TruncatedBytes int64  // cut by recovery at Open
	High           bool   // the bytes reached HighFill and have not fallen below NormalFill since
	LevelEvents    uint64 // buffer events (high, normal) recorded since Open
	LostEvents     uint64 // buffer events that could not be written (no room under drop_newest, disk failing)
	KeptDropped    uint64 // acknowledged items deleted for the budget before their KeepAcked window ended, since Open
}

// ErrClosed is returned by operations on a closed buffer.
var ErrClosed = errors.New("buffer is closed")

// ErrFull is returned by Append under drop_newest when the buffer is full:
// the items are dropped, counted, and recorded in a gap event later.
var ErrFull = errors.New("buffer full: items dropped (overflow: drop_newest)")

// Buffer is safe for concurrent use.
type Buffer struct {
	opts   Options
	log    *slog.Logger
	stream string

	mu      sync.Mutex
	segs    []*segment  // ordered by first sequence; the last is written to
	w       *os.File    // the last segment, open for appending
	next    uint64      // sequence of the next appended item
	base    uint64      // every sequence ≤ base is gone: confirmed by every consumer, or dropped
	cons    []*consumer // cons[0] is the primary (the "acked" file); the others Options.Consumers
	stats   Stats
	notify  chan struct{}
	closed  bool
	broken  error // set when a failed write could not be undone
	cur     cursor
	hcur    cursor      // ReadHistory's
	written int64       // bytes written since Open, across segments
	pending *pendingGap // drop_newest refusals not yet recorded
	// The level: high since the bytes reached highBytes, until they fall
	// below normalBytes (level.go).
	high                   bool
	highBytes, normalBytes int64

	syncMu   sync.Mutex
	syncCond *sync.Cond
	syncing  bool  // a sync is running
	synced   int64 // written bytes known to be on disk
	// Every item below durable is on disk. Read hands out no other: an
	// item the cloud acknowledged and a power cut then lost would free its
	// sequence for a new item, which the cloud would take for a replay.
	durable  atomic.Uint64
	syncs    uint64
	stop     chan struct{}
	stopped  chan struct{}
	syncHook func() // tests: runs before each group-commit sync
}

type segment struct {
	first uint64 // sequence of its first item
	last  uint64 // sequence of its last item; first-1 when empty
	path  string
	size  int64
	// confirmedAt is when every consumer had confirmed the segment up to
	// confirmedLast (its last item then): the KeepAcked window starts.
	confirmedAt   time.Time
	confirmedLast uint64
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
	if opts.SyncEvery <= 0 {
		opts.SyncEvery = time.Second
	}
	if opts.Overflow == "" {
		opts.Overflow = OverflowDropOldest
	}
	if opts.GapDevice == "" {
		opts.GapDevice = "gateway"
	}
	if opts.AckMarkEvery <= 0 {
		opts.AckMarkEvery = 5 * time.Second
	}
	switch opts.Fsync {
	case FsyncAlways, FsyncInterval, FsyncOff:
	default:
		return nil, fmt.Errorf("fsync policy %q is not always, interval or off", opts.Fsync)
	}
	if opts.Overflow != OverflowDropOldest && opts.Overflow != OverflowDropNewest {
		return nil, fmt.Errorf("overflow policy %q is not drop_oldest or drop_newest", opts.Overflow)
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create buffer directory: %w", err)
	}
	b := &Buffer{opts: opts, log: opts.Logger, notify: make(chan struct{})}
	b.syncCond = sync.NewCond(&b.syncMu)
	b.setThresholds()
	var err error
	if b.stream, err = b.loadStream(); err != nil {
		return nil, err
	}
	if err := b.loadConsumers(); err != nil {
		return nil, err
	}
	if err := b.recover(); err != nil {
		return nil, err
	}
	if err := b.loadPendingGap(); err != nil {
		b.close()
		return nil, err
	}
	if err := b.saveNewConsumers(); err != nil {
		b.close()
		return nil, err
	}
	// A buffer opened at or above HighFill says so again: the cloud may
	// not have heard (a smaller max_bytes, or the event lost in a drop).
	b.mu.Lock()
	b.checkHigh(false)
	b.mu.Unlock()
	if opts.Fsync == FsyncInterval {
		b.stop, b.stopped = make(chan struct{}), make(chan struct{})
		go b.syncEvery(opts.SyncEvery)
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
	if err := atomicfile.Write(path, []byte(s+"\n"), 0o640); err != nil {
		return "", fmt.Errorf("cannot write stream id: %w", err)
	}
	return s, nil
}

// Stream is the buffer's stream id.
func (b *Buffer) Stream() string { return b.stream }

// Notify returns a channel that is closed at the next Append.
func (b *Buffer) Notify() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.notify
}

// Acked is the primary consumer's cursor: every sequence up to it is
// acknowledged by the cloud (Trim), or was dropped for the budget. Items
// above it may be gone only if dropped; Read skips what is gone.
func (b *Buffer) Acked() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cons[0].confirmed
}

// Next is the sequence the next appended item will get.
func (b *Buffer) Next() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.next
}

// Stats returns the counters.
func (b *Buffer) Stats() Stats {
	b.mu.Lock()
	s := b.stats
	s.Segments = len(b.segs)
	s.High = b.high
	s.Readings = b.pendingAfter(b.cons[0].confirmed)
	s.Held = b.pendingAfter(b.base)
	s.RetainedBytes = b.retainedBytes()
	b.mu.Unlock()
	b.syncMu.Lock()
	s.Syncs = b.syncs
	b.syncMu.Unlock()
	return s
}

// Close syncs and closes the files and writes the trim mark. Data already
// appended stays on disk.
func (b *Buffer) Close() error {
	if b.stop != nil {
		b.mu.Lock()
		closed := b.closed
		b.mu.Unlock()
		if !closed {
			close(b.stop)
			<-b.stopped
		}
	}
	return b.close()
}

func (b *Buffer) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.resetCursor(&b.cur)
	b.resetCursor(&b.hcur)
	for _, c := range b.cons {
		b.resetCursor(&c.cur)
		b.saveCursor(c, true)
	}
	b.savePendingGap()
	if b.w != nil {
		if err := b.w.Sync(); err != nil {
			b.w.Close()
			return err
		}
		b.markSynced(b.written, b.next)
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
