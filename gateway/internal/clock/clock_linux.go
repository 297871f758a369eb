package clock

import (
	"time"

	"golang.org/x/sys/unix"
)

// kernelSynced asks adjtimex(2), read-only, whether the kernel considers the
// clock synchronised (an NTP or PTP daemon disciplines it).
func kernelSynced() (synced, ok bool) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, false
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0, true
}

// staNano is the kernel's STA_NANO status bit: the offset is in
// nanoseconds, not microseconds.
const staNano = 0x2000

// Kernel returns what the kernel knows of the clock when an NTP daemon
// disciplines it (adjtimex(2), read-only): the offset it is still
// correcting (the true time minus the clock's) and its maximum error. ok is
// false when the clock is not synchronised or the kernel cannot say.
func Kernel() (offset, maxError time.Duration, ok bool) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil || state == unix.TIME_ERROR || tx.Status&unix.STA_UNSYNC != 0 {
		return 0, 0, false
	}
	unit := time.Microsecond
	if tx.Status&staNano != 0 {
		unit = time.Nanosecond
	}
	return time.Duration(int64(tx.Offset)) * unit, time.Duration(int64(tx.Maxerror)) * time.Microsecond, true
}
