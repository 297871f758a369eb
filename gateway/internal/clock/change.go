package clock

import (
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Change is a change in how the gateway stamps what it acquires: with an
// unsynced clock (it reads before 2026), or with a set one again.
type Change struct {
	Synced bool
	// At is the wall clock when the change was seen: for an unsynced one,
	// a time in 1970 of the timeline's epochs, which re-stamping places.
	At time.Time
	// Quality is how times are stamped from then on: unsynced, or ntp, gps
	// or rtc once synced.
	Quality telemetry.ClockQuality
	// Correction, when Corrected, is what re-stamping adds to the times of
	// the last unsynced span: the step that set the clock.
	Correction time.Duration
	Corrected  bool
}

// How the timeline last saw stamping.
const (
	stampNone uint32 = iota // nothing stamped yet
	stampUnsynced
	stampSynced
)

// maxChanges bounds the changes waiting to be taken; beyond it they are
// counted in Lost.
const maxChanges = 16

// Changes delivers each change in how times are stamped, once: unsynced
// when the first time is stamped with an unsynced clock (at a boot in 1970,
// or when the clock is stepped back there), synced when a time is stamped
// with the clock set again. A gateway that starts with its clock set
// reports nothing. Changes wait for the taker, up to 16; Lost counts what
// did not fit.
func (tl *Timeline) Changes() <-chan Change { return tl.changes }

// Lost is how many changes were dropped because nobody took them.
func (tl *Timeline) Lost() uint64 { return tl.lost.Load() }

// observeSynced records that a time was stamped with quality q, the clock
// being set. Nothing but an atomic load unless stamping was unsynced.
func (tl *Timeline) observeSynced(wall time.Time, q telemetry.ClockQuality) {
	if tl.stamping.Load() != stampSynced {
		tl.change(stampSynced, wall, q)
	}
}

// change moves stamping to state to and announces it. Under changeMu, so
// that changes seen by several goroutines at once go out once and in order.
func (tl *Timeline) change(to uint32, wall time.Time, q telemetry.ClockQuality) {
	tl.changeMu.Lock()
	defer tl.changeMu.Unlock()
	from := tl.stamping.Load()
	if from == to {
		return
	}
	tl.stamping.Store(to)
	if from == stampNone && to == stampSynced {
		return // started with the clock set: nothing to say
	}
	c := Change{Synced: to == stampSynced, At: wall, Quality: q}
	if c.Synced {
		c.Correction, c.Corrected = tl.correction(wall)
	}
	select {
	case tl.changes <- c:
	default:
		tl.lost.Add(1)
	}
}

// correction is what re-stamping adds to the times of the last epoch, with
// the clock reading wall now.
func (tl *Timeline) correction(wall time.Time) (time.Duration, bool) {
	off := tl.offset(wall)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if len(tl.epochs) == 0 {
		return 0, false
	}
	return off - tl.epochs[len(tl.epochs)-1].offset, true
}
