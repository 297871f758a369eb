package telemetry

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is something that happened at a device at a moment, rather than a
// value measured: a tag read at a reader, a buoy drifting off its mooring.
//
// An event is identified by (Device, Kind, Key, Time). Sending the same
// identity again replaces it, which is how an event is updated: a tag read
// is sent when the tag is first seen and again, with its final count and
// last-seen time, when it leaves.
type Event struct {
	Device string             // reporting device (a Name)
	Kind   string             // what happened: "tag", "drift" … (a Name)
	Key    string             // what it is about, e.g. the tag id; may be empty
	Time   time.Time          // when it happened (for a tag: first seen)
	Clock  ClockQuality       // how Time was known
	Attrs  map[string]string  // text details, e.g. "tag_type": "fdx-b"
	Values map[string]float64 // numeric details, e.g. "count": 12
}

// Event kinds.
const (
	// EventTag is a tag (RFID/NFC card, ear tag) seen at a reader. Key is
	// the tag id; Attrs: tag_type, state ("present" or "gone"); Values:
	// count (reads), duration_s (first to last seen).
	EventTag = "tag"
	// EventDrift is a buoy outside its mooring radius (state "drifting") or
	// back inside it ("returned"). Values: lat, lon, distance_m, radius_m,
	// anchor_lat, anchor_lon (the mooring; absent from older gateways).
	EventDrift = "drift"
	// EventGap is items the gateway dropped unsent because its buffer hit
	// its byte budget. Device is the gateway; Time the first dropped item's
	// time. Attrs: reason ("buffer_full"), policy ("drop_oldest",
	// "drop_newest"). Values: count (items dropped, exact), span_s (first
	// to last dropped item's time), and for drop_oldest from_seq, to_seq.
	// Reason "not_kept" (policy "keep_acked") is the other kind: a cloud
	// restored from a backup asked for items again (Ack.ResendFrom) that
	// the gateway no longer keeps; from_seq … to_seq are those sequences,
	// count how many, span_s 0 (their times are gone with them).
	EventGap = "gap"
	// EventClock is a change in how the gateway knows the time. Device is
	// the gateway. Attrs: state "unsynced" (readings are being stamped by
	// a clock that is not synchronised: after a boot without RTC or
	// network, or NTP lost) or "synced" (the clock is known again; Values
	// offset_s: the correction applied to the readings stamped while
	// unsynced, re-stamped when sent, when known), source (ntp, gps, rtc).
	EventClock = "clock"
	// EventQuarantine is a device the gateway stopped polling at its
	// interval because it did not answer (state "quarantined"), or
	// polls again because it answered (state "released"). Attrs: state,
	// bus, error (the last error, while quarantined). Values: failures
	// (consecutive failed polls), backoff_s.
	EventQuarantine = "quarantine"
	// EventBuffer is the gateway's buffer filling up: state "high" when it
	// reaches 80 % of its byte budget, "normal" when it falls below 70 %
	// again. Device is the gateway. Values: fill (0–1), bytes, max_bytes.
	EventBuffer = "buffer"
	// EventConnection is a stream device's line (serial port, TCP
	// connection to a reader or a multiplexer) lost (state "lost", Attrs
	// error) or back (state "restored"). Device is the stream device.
	EventConnection = "connection"
	// EventFuture is made by the cloud, never sent by a gateway: items of
	// a batch (Key "seq-first-last") it dropped because they were stamped
	// more than its limit ahead of its clock. Device is the gateway; Attrs
	// reason "clock_ahead"; Values count, ahead_s (the furthest), max_future_s.
	EventFuture = "future"
	// EventMode is a device's operating mode changing: Attrs state is one
	// of the Mode* values, source "register" (read from the device's
	// status register, Values raw: the register's value) or "technician"
	// (set by hand at the gateway, Attrs by: who, when known). Sent when
	// the mode changes, and once for a device's first mode after the
	// gateway starts. Readings acquired while a device is in a mode other
	// than normal are still true readings; the mode says what the
	// instrument was doing (an HJ 212 uplink flags them M, C, F).
	EventMode = "mode"
)

// Device modes (EventMode's state), after HJ 212-2017 table 8 and the
// instrument work states of its table B.10 (i12001).
const (
	ModeNormal      = "normal"      // measuring
	ModeMaintenance = "maintenance" // under maintenance (维护): table 8 M
	ModeCalibration = "calibration" // calibrating (校准, 标定): table 8 C
	ModeStopped     = "stopped"     // stopped, not measuring (停运, 停机, 待机): table 8 F
)

// Modes lists the device modes. A receiver takes any other state as a mode
// it does not know (a later gateway's), not as an error.
var Modes = []string{ModeNormal, ModeMaintenance, ModeCalibration, ModeStopped}

// ValidMode reports whether m is one of Modes.
func ValidMode(m string) bool {
	for _, v := range Modes {
		if v == m {
			return true
		}
	}
	return false
}

// Acquired reports whether the event was acquired from its device (a tag
// read, a fix that shows drift) rather than reported about it by the
// gateway (a quarantine, a lost connection, a gap, a clock or buffer
// change): only the first is a sign that the device is alive.
func (e Event) Acquired() bool {
	switch e.Kind {
	case EventGap, EventClock, EventQuarantine, EventBuffer, EventConnection, EventFuture, EventMode:
		return false
	}
	return true
}

// Limits on an event's content.
const (
	MaxEventKey   = 64
	MaxEventAttrs = 16
	MaxAttrLen    = 128
)

// Validate checks that e can travel and be stored.
func (e Event) Validate() error {
	if err := CheckName("device", e.Device); err != nil {
		return err
	}
	if err := CheckName("event kind", e.Kind); err != nil {
		return err
	}
	if len(e.Key) > MaxEventKey {
		return fmt.Errorf("%s/%s: key %.20q… is longer than %d bytes", e.Device, e.Kind, e.Key, MaxEventKey)
	}
	if err := printable(e.Key); err != nil {
		return fmt.Errorf("%s/%s: key: %w", e.Device, e.Kind, err)
	}
	if e.Time.IsZero() {
		return fmt.Errorf("%s/%s: time is not set", e.Device, e.Kind)
	}
	if !e.Clock.Valid() {
		return fmt.Errorf("%s/%s: %v", e.Device, e.Kind, e.Clock)
	}
	if len(e.Attrs)+len(e.Values) > MaxEventAttrs {
		return fmt.Errorf("%s/%s: %d details, more than %d", e.Device, e.Kind, len(e.Attrs)+len(e.Values), MaxEventAttrs)
	}
	for k, v := range e.Attrs {
		if err := CheckName("attribute", k); err != nil {
			return fmt.Errorf("%s/%s: %w", e.Device, e.Kind, err)
		}
		if len(v) > MaxAttrLen {
			return fmt.Errorf("%s/%s: attribute %s is longer than %d bytes", e.Device, e.Kind, k, MaxAttrLen)
		}
		if err := printable(v); err != nil {
			return fmt.Errorf("%s/%s: attribute %s: %w", e.Device, e.Kind, k, err)
		}
	}
	for k, v := range e.Values {
		if err := CheckName("value", k); err != nil {
			return fmt.Errorf("%s/%s: %w", e.Device, e.Kind, err)
		}
		if _, dup := e.Attrs[k]; dup {
			return fmt.Errorf("%s/%s: %s is both an attribute and a value", e.Device, e.Kind, k)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s/%s: value %s is %v", e.Device, e.Kind, k, v)
		}
	}
	return nil
}

// AttrText makes s fit to travel as an attribute value: control characters
// become spaces, invalid UTF-8 becomes '?', and text longer than MaxAttrLen
// bytes is cut at a character boundary and ends with "…". Error messages
// (a serial port's, a Modbus exception's) go through it into events.
func AttrText(s string) string {
	clean := strings.Map(func(c rune) rune {
		switch {
		case c == utf8.RuneError:
			return '?' // invalid UTF-8, or U+FFFD itself, which printable refuses
		case c < 0x20 || c == 0x7f:
			return ' '
		}
		return c
	}, s)
	if len(clean) <= MaxAttrLen {
		return clean
	}
	const ellipsis = "…"
	cut := MaxAttrLen - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(clean[cut]) {
		cut--
	}
	return clean[:cut] + ellipsis
}

func printable(s string) error {
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == 0xFFFD {
			return fmt.Errorf("%q holds a control character or invalid UTF-8", s)
		}
	}
	return nil
}

// sortedKeys returns m's keys in order, so encodings are deterministic.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
