// Package clock tells how trustworthy the gateway's wall clock is, so every
// reading can carry a clock-quality flag.
package clock

import (
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// earliest is a time before which the clock cannot be right: this software
// did not exist yet. A gateway that boots without RTC or network reads 1970.
var earliest = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Source reports the clock quality, asking the kernel at most every 10 s.
type Source struct {
	fixed telemetry.ClockQuality // set when configured; ClockUnknown means detect
	now   func() time.Time
	sync  func() (synced, ok bool)
	tl    *Timeline // records when the clock is unsynced; may be nil

	mu      sync.Mutex
	checked time.Time
	last    telemetry.ClockQuality
}

// New returns a source. fixed is the configured quality, or ClockUnknown to
// detect it: ntp when the kernel says an NTP daemon has synchronised the
// clock, unsynced when the clock reads before 2026, rtc otherwise. Each
// time the clock is found unsynced, tl (if not nil) records it, so what
// was stamped then can be re-stamped later.
func New(fixed telemetry.ClockQuality, tl *Timeline) *Source {
	return &Source{fixed: fixed, now: time.Now, sync: kernelSynced, tl: tl}
}

// Quality returns the current clock quality. The timeline, if any, hears
// of every stamp, and so of the moments stamping turns unsynced or synced
// (Timeline.Changes); that costs an atomic load while nothing changes.
func (s *Source) Quality() telemetry.ClockQuality {
	now := s.now()
	if now.Before(earliest) {
		if s.tl != nil {
			s.tl.observeUnsynced(now)
		}
		return telemetry.ClockUnsynced
	}
	q := s.synced(now)
	if s.tl != nil {
		s.tl.observeSynced(now, q)
	}
	return q
}

// synced is the quality of a clock that is set: the configured one, or
// ntp or rtc as the kernel says.
func (s *Source) synced(now time.Time) telemetry.ClockQuality {
	if s.fixed != telemetry.ClockUnknown {
		return s.fixed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.checked.IsZero() && now.Sub(s.checked) < 10*time.Second && now.After(s.checked) {
		return s.last
	}
	s.checked = now
	s.last = telemetry.ClockRTC
	if synced, ok := s.sync(); ok && synced {
		s.last = telemetry.ClockNTP
	}
	return s.last
}
