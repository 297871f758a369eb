package clock

import "golang.org/x/sys/unix"

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
