package clock

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Timeline lets readings stamped while the wall clock was not set (a
// gateway without RTC or network boots in 1970) be re-stamped once it is.
//
// The monotonic clock runs steadily from boot whatever happens to the wall
// clock, so the wall clock's offset from it is constant until someone sets
// the time. While the clock is unsynced, the timeline records each span of
// wall time it has seen with the offset that held then (an epoch; a clock
// stepped to another wrong time starts a new one). When the clock is set,
// a time t from an epoch is re-stamped as t + (offset now − offset then):
// the true time at which the monotonic clock read what it read at t.
//
// A timeline lives as long as the process: the monotonic clock means
// nothing after a reboot, so readings from an earlier run cannot be
// re-stamped and stay flagged unsynced.
type Timeline struct {
	now     func() time.Time     // wall clock
	elapsed func() time.Duration // monotonic time since anchor
	anchor  time.Time            // wall time when elapsed was 0

	mu     sync.Mutex
	epochs []epoch

	// How times are being stamped, and its changes (change.go).
	stamping atomic.Uint32
	changeMu sync.Mutex
	changes  chan Change
	lost     atomic.Uint64
}

type epoch struct {
	from, to time.Time     // wall times seen while the offset held
	offset   time.Duration // wall − monotonic, relative to the anchor
}

const (
	// sameEpoch: offsets closer than this are one epoch (scheduling noise
	// between reading the two clocks).
	sameEpoch = 100 * time.Millisecond
	// slack widens an epoch's span when matching a time: a reading can be
	// dated a little before the clock was asked about it (a stream line by
	// the time its first byte arrived).
	slack = time.Minute
	// maxEpochs bounds memory on a clock stepped again and again while
	// unsynced; the oldest are forgotten, their readings stay flagged.
	maxEpochs = 64
)

// NewTimeline starts a timeline anchored now.
func NewTimeline() *Timeline {
	start := time.Now()
	return &Timeline{now: time.Now, elapsed: func() time.Duration { return time.Since(start) }, anchor: start.Round(0),
		changes: make(chan Change, maxChanges)}
}

// offset is the wall clock's offset from the monotonic clock at wall.
func (tl *Timeline) offset(wall time.Time) time.Duration {
	return wall.Sub(tl.anchor) - tl.elapsed()
}

// observeUnsynced records that the wall clock read wall while unsynced,
// and announces the change if stamping was not unsynced before.
func (tl *Timeline) observeUnsynced(wall time.Time) {
	tl.addEpoch(wall)
	if tl.stamping.Load() != stampUnsynced {
		tl.change(stampUnsynced, wall, telemetry.ClockUnsynced)
	}
}

// addEpoch records wall in the current epoch, or starts a new one.
func (tl *Timeline) addEpoch(wall time.Time) {
	off := tl.offset(wall)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if n := len(tl.epochs); n > 0 {
		e := &tl.epochs[n-1]
		if d := e.offset - off; d < sameEpoch && d > -sameEpoch {
			if wall.Before(e.from) {
				e.from = wall
			}
			if wall.After(e.to) {
				e.to = wall
			}
			return
		}
	}
	if len(tl.epochs) == maxEpochs {
		tl.epochs = append(tl.epochs[:0], tl.epochs[1:]...)
	}
	tl.epochs = append(tl.epochs, epoch{from: wall, to: wall, offset: off})
}

// Known reports whether the wall clock is set now.
func (tl *Timeline) Known() bool { return !tl.now().Before(earliest) }

// Restamp returns the true time of t, a time stamped while the clock was
// unsynced during this run, once the clock is set. It returns false while
// the clock is still unsynced, or when t is in no epoch, or in two (the
// clock was stepped back over times it had already shown), so a reading
// is never moved on a guess.
func (tl *Timeline) Restamp(t time.Time) (time.Time, bool) {
	now := tl.now()
	if now.Before(earliest) {
		return t, false
	}
	off := tl.offset(now)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var match *epoch
	for i := range tl.epochs {
		e := &tl.epochs[i]
		if t.Before(e.from.Add(-slack)) || t.After(e.to.Add(slack)) {
			continue
		}
		if match != nil {
			return t, false
		}
		match = e
	}
	if match == nil {
		return t, false
	}
	return t.Add(off - match.offset), true
}
