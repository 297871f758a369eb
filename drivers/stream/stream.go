// Package stream is the contract between the gateway and the drivers of
// devices that talk in streams rather than registers: NMEA instruments,
// RFID/NFC readers, NDBC text feeds. A driver is a Decoder: bytes go in as
// they arrive, readings and events come out. The gateway owns the port or
// connection, the schedule and the retries; the decoder only parses.
package stream

import (
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Output is what a decoder produced from one call.
type Output struct {
	Readings []telemetry.Reading
	Events   []telemetry.Event
	// Send is bytes the decoder wants written to the device (a reader that
	// must be asked, like the PN532). Usually nil.
	Send []byte
}

// Add appends o2 to o.
func (o *Output) Add(o2 Output) {
	o.Readings = append(o.Readings, o2.Readings...)
	o.Events = append(o.Events, o2.Events...)
	o.Send = append(o.Send, o2.Send...)
}

// Empty reports whether o holds nothing.
func (o Output) Empty() bool { return len(o.Readings) == 0 && len(o.Events) == 0 && len(o.Send) == 0 }

// Decoder parses one device's byte stream. A Decoder is used by one
// goroutine. It never blocks, never panics on any input, and never drops
// bad input silently: what it cannot use is skipped, counted in Stats by
// kind, and it resynchronises on the next frame.
type Decoder interface {
	// Start is called each time the port or connection (re)opens; it may
	// return bytes to send first (a wake-up). A frame cut by the reopening
	// is discarded and counted.
	Start(now time.Time) Output
	// Feed takes the next bytes as they arrived, in any split: a frame may
	// span calls, a call may hold several frames. now is when they arrived.
	Feed(chunk []byte, now time.Time) Output
	// Tick is called about once a second with the time, for what depends on
	// time passing: a tag that left the reader, the next poll of a reader
	// that must be asked.
	Tick(now time.Time) Output
	// Stats reports what was accepted and what was refused.
	Stats() Stats
}

// Stats are a decoder's counters.
type Stats struct {
	Frames    uint64            // complete frames accepted
	Errors    map[string]uint64 // refused input by kind (checksum, overlong, garbage, …)
	LastFrame time.Time         // when the last frame was accepted; zero if none
}

// Count increments s.Errors[kind].
func (s *Stats) Count(kind string) {
	if s.Errors == nil {
		s.Errors = map[string]uint64{}
	}
	s.Errors[kind]++
}

// Accepted records a good frame at now.
func (s *Stats) Accepted(now time.Time) {
	s.Frames++
	s.LastFrame = now
}
