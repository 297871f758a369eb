package rfid

// Tag types, the tag_type attribute of a tag event.
const (
	// TagEM4100 is a 125 kHz EM4100/EM4102 read-only tag.
	TagEM4100 = "em4100"
	// TagFDXB is a 134.2 kHz tag numbered after ISO 11784. The text
	// outputs of animal-tag readers do not tell FDX-B from ISO-coded HDX
	// tags, so a tag of this type may be either (attribute hdx "unknown").
	TagFDXB = "fdx-b"
	// TagHDX is an industrial-coded HDX tag (Allflex "LR" lines).
	TagHDX = "hdx"
	// TagWiegand26 is a card read through a Wiegand-26 (H10301) interface.
	TagWiegand26 = "wiegand26"
	// TagISO14443A is an ISO 14443 type A card (MIFARE, NTAG, DESFire…).
	TagISO14443A = "iso14443a"
)

// Tag id formats, the form of an event's Key for each tag type.
const (
	// FormatEM4100 is 10 upper-case hex digits: the version (customer)
	// byte and the 32-bit id, e.g. 14008EC793.
	FormatEM4100 = "HHHHHHHHHH"
	// FormatISO11784 is the 3-digit country or manufacturer code and the
	// 12-digit national number, e.g. 982000001088420.
	FormatISO11784 = "CCCNNNNNNNNNNNN"
	// FormatHDXIndustrial is the 4-digit application code and the 16-digit
	// number of an industrial HDX tag, e.g. 00060000000018514348. Being 20
	// digits long it never collides with an ISO 11784 id.
	FormatHDXIndustrial = "AAAANNNNNNNNNNNNNNNN"
	// FormatWiegand26 is the facility code (0–255) and the card number
	// (0–65535) in decimal without leading zeros, e.g. 90:324.
	FormatWiegand26 = "FC:CN"
	// FormatISO14443A is the UID in upper-case hex: 8, 14 or 20 digits for
	// a 4, 7 or 10 byte UID, e.g. 04A2B3C4D5E680.
	FormatISO14443A = "HH…"
)

// Attribute and value names of tag events besides those of
// telemetry.EventTag.
const (
	AttrTagType = "tag_type" // one of the Tag constants
	AttrState   = "state"    // StatePresent or StateGone
	ValueCount  = "count"    // reads in this visit
	// ValueDuration is the time from the first to the last read, seconds.
	ValueDuration = "duration_s"

	// AttrDecimal is the low 32 bits of an EM4100 id as 10 decimal digits,
	// the number printed on most EM4100 cards and fobs.
	AttrDecimal = "decimal"
	// AttrAnimal is "true" for a tag coded as an animal tag, "false" for
	// one coded otherwise and "unknown" when the reader format hides it.
	AttrAnimal = "animal"
	// AttrHDX is "true" for a tag known to be HDX and "unknown" otherwise.
	AttrHDX = "hdx"
	// AttrDataBlock is the ISO 11784 data-block flag ("0" or "1") where
	// the reader reports it (TIRIS format).
	AttrDataBlock = "data_block"
	// AttrFacility and AttrCard are the Wiegand-26 facility code and card
	// number in decimal.
	AttrFacility = "facility_code"
	AttrCard     = "card_number"
	// AttrATQA and AttrSAK are an ISO 14443A card's SENS_RES (2 bytes)
	// and SEL_RES (1 byte) in upper-case hex, as the PN532 reports them.
	AttrATQA = "atqa"
	AttrSAK  = "sak"
	// AttrRandomUID is "true" for a 4-byte UID starting with 08, which
	// cards and phones draw anew each time they enter a field: each visit
	// of such a card is a different tag.
	AttrRandomUID = "random_uid"
)

// Tag states.
const (
	StatePresent = "present"
	StateGone    = "gone"
)

// Kinds of refused input and other incidents counted in Stats.Errors.
const (
	StatGarbage     = "garbage"       // a run of bytes outside any frame or line
	StatCut         = "cut"           // a frame cut by a new start or by Start
	StatOverlong    = "overlong"      // a frame or line longer than the protocol allows
	StatLength      = "length"        // a complete frame or line of the wrong length
	StatFormat      = "format"        // a complete frame or line that does not parse
	StatChecksum    = "checksum"      // an EM4100 XOR checksum mismatch
	StatParity      = "parity"        // a Wiegand parity bit mismatch
	StatRange       = "range"         // a number outside its field (an ISO national id > 2^38−1)
	StatZeroID      = "zero_id"       // an all-zero id, ignored
	StatOverflow    = "tags_overflow" // a tag not tracked because MaxTracked are
	StatUnconfirmed = "unconfirmed"   // a visit that ended before min_reads reads
	StatLCS         = "lcs"           // a PN532 frame with a bad length checksum
	StatDCS         = "dcs"           // a PN532 frame with a bad data checksum
	StatNACK        = "nack"          // a PN532 NACK (it asked for a resend)
	StatErrorFrame  = "error_frame"   // a PN532 syntax-error frame
	StatTimeout     = "timeout"       // a PN532 command not answered in time, resent
	StatUnexpected  = "unexpected"    // a PN532 frame that answers nothing pending
	StatConfig      = "config"        // input to a decoder built with an unknown protocol
)

// MaxTracked bounds the number of tags a decoder follows at once.
const MaxTracked = 1024
