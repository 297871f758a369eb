// Package rfid decodes the byte streams of serial RFID and NFC readers into
// tag events: 125 kHz EM4100 readers (RDM6300, ID-12LA), 134.2 kHz animal-tag
// readers printing ISO 11784 numbers as text (Allflex and TIRIS styles),
// Wiegand-26 to serial converters, and the NXP PN532 over its UART (HSU).
//
// A Decoder implements stream.Decoder. It frames the input, checks every
// checksum and parity bit, counts what it refuses by kind in Stats
// (see the Stat constants) and resynchronises on the next frame start or
// line. The passive readers only talk; the PN532 must be asked, so its
// decoder returns the wake-up, configuration and poll frames in Output.Send
// and resends them when the reader does not answer.
//
// # Tag events and de-duplication
//
// A reader repeats a tag that stays in its field many times a second. The
// decoder turns these reads into one telemetry.EventTag per visit:
//
//   - the read that makes a tag count (the first, or the min_reads-th)
//     emits the event with state "present";
//   - further reads no more than the dedup window after the previous read
//     only update the counters;
//   - when Tick finds the tag unread for longer than the window, the same
//     event (same Device, Kind, Key and Time = first seen) is emitted again
//     with state "gone", the final count and duration_s = last − first read.
//
// A tag held at a reader for ten seconds is thus two versions of one event,
// and a tag that comes back after the window is a new event. A visit that
// never reaches min_reads emits nothing and is counted as StatUnconfirmed.
// At most MaxTracked tags are followed at once; reads of further tags are
// counted as StatOverflow and dropped until a tracked tag leaves.
//
// # Tag ids
//
// Event keys have one fixed form per tag type (see the Format constants):
// EM4100 ids are the 10 hex digits the reader sends, upper case; ISO 11784
// animal tags are the 15-digit country-or-manufacturer code and national
// number; industrial HDX tags are the 4-digit application code and 16-digit
// number; Wiegand-26 cards are "facility:card" in decimal; ISO 14443A cards
// are their UID in upper-case hex.
//
// The PN532 decoder parses frames only: the gateway owns the serial port.
// This is why github.com/ZaparooProject/go-pn532, which opens and drives
// the port itself, is not used.
package rfid
