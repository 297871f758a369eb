// Package nmea decodes NMEA 0183 streams from met-ocean instruments (weather
// stations, buoys, GNSS receivers, echo sounders, Nortek wave sensors) into
// telemetry readings, implementing stream.Decoder.
//
// # Framing
//
// A frame starts at '$' or '!' and ends at CR or LF. Bytes outside frames are
// counted once per run as "garbage" (or "binary" when the run holds control
// or non-ASCII bytes) and skipped; a new start delimiter inside a frame
// counts the unfinished frame as "truncated" and starts over; a control byte
// inside a frame drops it as "binary"; a frame longer than Config.MaxLine
// (512 by default; the standard's 82 is exceeded by real devices) is
// "overlong"; a frame interrupted by Start is "cut". The checksum (XOR of the
// bytes between the start delimiter and '*') must be present and right
// ("checksum", "no_checksum"). Frames may be split across Feed calls in any
// way; the output does not depend on the split.
//
// # Parsing
//
// Sentences are parsed with github.com/adrianmo/go-nmea after trimming the
// spaces around fields (go-nmea rejects " 12.3", its issue #109), whatever
// the talker (WI, II, IN, GP, GN, YX, SD, numeric talkers of NMEA 2000
// gateways, …). MWV, MWD, MWH and Nortek's proprietary $PNORW are parsed by
// this package's own parsers, registered on a per-decoder go-nmea
// SentenceParser: MWV to accept Gill's gust reference "G" and the status
// field that older talkers leave out, MWD to accept the 6-field variant
// without the knots pair, MWH and PNORW because go-nmea lacks them.
//
// Every sentence is accepted (counted in Stats.Frames) only when it yields at
// least one reading; otherwise it is counted by why not: "unknown_sentence"
// (a formatter this driver does not map, e.g. GSV or AIS), "ignored" (left
// out by Config.Sentences, Config.Metrics or Config.MWVReference),
// "malformed" (go-nmea refused it, or a value is not a finite number),
// "empty" (all its data fields are empty), "invalid_status" (the device
// flagged the data invalid: MWV or RMC status V, RMC mode N) or "unmapped"
// (an XDR sentence with no transducer in Config.XDR).
//
// # Values
//
// An empty field is a missing value: it gives no reading, never a zero
// (go-nmea returns 0 for empty numbers, so emptiness is read from the raw
// fields). Values come in SI-ish units: m/s, °, °C, hPa, %, m, s. A value
// outside the physically plausible range of its metric is kept with
// quality Bad. Data flagged invalid by the device (status V) gives no
// readings at all: the numbers of an invalid MWV or RMC are whatever the
// device had last, and storing them as Bad would only add noise.
//
// The acquisition time of every reading is the arrival time passed to Feed,
// with the gateway's clock quality. The sentences' own UTC times are
// time-of-day only (MWV, MDA and XDR carry none at all) and instrument
// clocks are often unset, so mixing them in would give non-monotonic series;
// instead a ZDA sentence with a full date yields clock_offset, the GNSS time
// minus the arrival time in seconds, which shows how far the gateway's clock
// is off.
//
// Water depth is below the surface whenever that can be known: DBS as sent;
// DPT as depth + offset when the offset is positive (transducer to
// waterline); DBT, and DPT with a zero, empty or negative (keel) offset, as
// depth + Config.TransducerDepth.
//
// # Position and mooring watch
//
// Valid GGA fixes (quality 1–5, and 6 "estimated" with quality Uncertain) and
// RMC fixes with status A update the decoder's last known position
// (Decoder.Position) and give latitude and longitude readings. With
// Decoder.WithMooring, each valid non-estimated fix also feeds a Drift, which
// emits a telemetry.EventDrift event once when the buoy leaves its mooring
// circle and once when it comes back well inside (hysteresis), so that GPS
// jitter at the boundary does not flap. The event carries the fix (lat, lon),
// distance_m, radius_m and the anchor (anchor_lat, anchor_lon), from which the
// console draws the mooring circle.
package nmea
