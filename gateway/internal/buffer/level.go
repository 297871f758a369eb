package buffer

import (
	"math"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Fill levels of the byte budget at which the buffer records a buffer event:
// "high" when its bytes reach HighFill of MaxBytes, "normal" when they fall
// below NormalFill again. The gap between them keeps a buffer hovering at
// one threshold from sending an event per append.
const (
	HighFill   = 0.8
	NormalFill = 0.7
)

// Buffer levels, the state attribute of a buffer event.
const (
	LevelHigh   = "high"
	LevelNormal = "normal"
)

// setThresholds works out the byte counts of HighFill and NormalFill of
// MaxBytes exactly, in integers: the bytes are high at ⌈0.8 m⌉ and
// normal below ⌈0.7 m⌉.
func (b *Buffer) setThresholds() {
	m := b.opts.MaxBytes
	b.highBytes = m - m/5
	b.normalBytes = m - (m/10*3 + m%10*3/10)
}

// checkHigh runs under b.mu after an append, before the budget drops
// anything: the first time the bytes reach HighFill, or an item is refused
// under drop_newest (full), it records a "high" event. It costs a
// comparison. Only an append raises the level.
// It reports whether it wrote an event.
func (b *Buffer) checkHigh(full bool) bool {
	if !b.high && (full || b.levelBytes() >= b.highBytes) {
		b.high = true
		return b.writeLevel(LevelHigh)
	}
	return false
}

// checkNormal runs under b.mu after a trim: once acknowledged items have
// brought the bytes below NormalFill it records a "normal" event. A drop
// under drop_oldest does not: a buffer that drops is still under pressure.
func (b *Buffer) checkNormal() bool {
	if b.high && b.levelBytes() < b.normalBytes {
		b.high = false
		return b.writeLevel(LevelNormal)
	}
	return false
}

// levelBytes are the bytes the fill level counts: all but those retained
// for history, which the budget drops first.
func (b *Buffer) levelBytes() int64 {
	if b.opts.RetainBytes == 0 && b.opts.KeepAcked == 0 {
		return b.stats.Bytes
	}
	return b.stats.Bytes - b.retainedBytes()
}

// writeLevel appends a buffer event and syncs it, as writeGap does. If it
// cannot be written (drop_newest with no room left, a failing disk), it is
// counted in Stats.LostEvents and logged. It reports whether it wrote.
func (b *Buffer) writeLevel(state string) bool {
	clock := telemetry.ClockUnknown
	if b.opts.Clock != nil {
		clock = b.opts.Clock()
	}
	maxBytes := float64(b.opts.MaxBytes)
	e := telemetry.Event{Device: b.opts.GapDevice, Kind: telemetry.EventBuffer, Time: time.Now(), Clock: clock,
		Attrs: map[string]string{"state": state},
		Values: map[string]float64{"fill": math.Min(1, float64(b.stats.Bytes)/maxBytes),
			"bytes": float64(b.stats.Bytes), "max_bytes": maxBytes}}
	if err := b.writeEvent(e, true); err != nil {
		b.stats.LostEvents++
		b.log.Error("cannot record the buffer's level in the buffer", "state", state, "bytes", b.stats.Bytes,
			"max_bytes", b.opts.MaxBytes, "err", err)
		return false
	}
	b.stats.LevelEvents++
	if state == LevelHigh {
		b.log.Warn("buffer filling up", "bytes", b.stats.Bytes, "max_bytes", b.opts.MaxBytes)
	} else {
		b.log.Info("buffer level normal again", "bytes", b.stats.Bytes, "max_bytes", b.opts.MaxBytes)
	}
	return true
}
