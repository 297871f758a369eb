//go:build !linux

package clock

import "time"

func kernelSynced() (synced, ok bool) { return false, false }

// Kernel: only Linux's kernel says (clock_linux.go).
func Kernel() (offset, maxError time.Duration, ok bool) { return 0, 0, false }
