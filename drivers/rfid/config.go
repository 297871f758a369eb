package rfid

import (
	"fmt"
	"time"
)

// Protocol is what a reader sends on its serial line.
type Protocol string

// Protocols.
const (
	// EM4100RDM6300 is 14-byte frames: STX, 10 hex digits (version byte
	// and 32-bit id), 2 hex digits of XOR checksum, ETX (RDM6300, RDM630,
	// Seeed Grove 125 kHz).
	EM4100RDM6300 Protocol = "em4100-rdm6300"
	// EM4100ID12LA is 16-byte frames: as EM4100RDM6300 with CR LF before
	// ETX (ID Innovations ID-12LA, ID-20LA in ASCII mode).
	EM4100ID12LA Protocol = "em4100-id12la"
	// FDXBText is lines of text from a 134.2 kHz animal-tag reader:
	// "LA 982 000001088420", the TIRIS form "LA 00000 0 982 000001088420",
	// industrial HDX "LR 0006 0000000018514348", "982 000001088420", the
	// 15-digit form "982000001088420" and dot-hex "3E7.1CBE991A14".
	FDXBText Protocol = "fdx-b-text"
	// Wiegand26Text is lines of 26 '0'/'1' characters from a
	// Wiegand-to-serial converter (H10301: even parity, 8-bit facility
	// code, 16-bit card number, odd parity).
	Wiegand26Text Protocol = "wiegand26-text"
	// PN532 is an NXP PN532 on its UART (HSU), polled for ISO 14443A cards.
	PN532 Protocol = "pn532"
)

// protocolNames lists the protocols for messages.
const protocolNames = "em4100-rdm6300, em4100-id12la, fdx-b-text, wiegand26-text, pn532"

// Valid reports whether p is one of the Protocol constants.
func (p Protocol) Valid() bool {
	switch p {
	case EM4100RDM6300, EM4100ID12LA, FDXBText, Wiegand26Text, PN532:
		return true
	}
	return false
}

// Defaults.
const (
	DefaultDedup        = 2 * time.Second
	DefaultMinReads     = 1
	DefaultPN532Timeout = 500 * time.Millisecond
)

// tickPeriod is about how often the gateway calls Tick.
const tickPeriod = time.Second

// Config is the rfid section of a reader's profile.
type Config struct {
	// Protocol is one of the Protocol constants.
	Protocol Protocol `yaml:"protocol"`
	// Dedup is the de-duplication window: a tag read again no later than
	// this after its previous read continues the same event; a tag unread
	// for longer has left. Default 2s. For the PN532 it must exceed
	// poll_interval and timeout by a tick (1 s), or a held card would seem
	// to leave between two polls.
	Dedup time.Duration `yaml:"dedup"`
	// MinReads is how many reads in one visit make a tag count; a visit
	// with fewer emits no event. Default 1.
	MinReads int `yaml:"min_reads"`
	// PollInterval (pn532 only) is the least time between two polls.
	// Default 0: poll again as soon as the reader answered. Otherwise the
	// next poll goes out with the first Tick or Feed after the interval,
	// so intervals round up to the gateway's tick (about 1 s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Timeout (pn532 only) is how long a command may go unanswered before
	// it is resent. Default 500ms; checked at each Tick.
	Timeout time.Duration `yaml:"timeout"`
}

// Normalize fills defaults.
func (c *Config) Normalize() {
	if c.Dedup == 0 {
		c.Dedup = DefaultDedup
	}
	if c.MinReads == 0 {
		c.MinReads = DefaultMinReads
	}
	if c.Protocol == PN532 && c.Timeout == 0 {
		c.Timeout = DefaultPN532Timeout
	}
}

// Check reports what is wrong with a normalized config, as field name →
// message pairs for the caller to place.
func (c *Config) Check() map[string]string {
	bad := map[string]string{}
	if !c.Protocol.Valid() {
		bad["protocol"] = fmt.Sprintf("%q is not one of %s", c.Protocol, protocolNames)
	}
	if c.Dedup < 10*time.Millisecond || c.Dedup > time.Hour {
		bad["dedup"] = fmt.Sprintf("%v is not between 10ms and 1h", c.Dedup)
	}
	if c.MinReads < 1 || c.MinReads > 1000 {
		bad["min_reads"] = fmt.Sprintf("%d is not between 1 and 1000", c.MinReads)
	}
	if c.Protocol != PN532 {
		if c.PollInterval != 0 {
			bad["poll_interval"] = "is only for protocol pn532"
		}
		if c.Timeout != 0 {
			bad["timeout"] = "is only for protocol pn532"
		}
		return bad
	}
	okPoll := c.PollInterval >= 0 && c.PollInterval <= time.Hour
	if !okPoll {
		bad["poll_interval"] = fmt.Sprintf("%v is not between 0 and 1h", c.PollInterval)
	}
	okTimeout := c.Timeout >= 10*time.Millisecond && c.Timeout <= time.Minute
	if !okTimeout {
		bad["timeout"] = fmt.Sprintf("%v is not between 10ms and 1m", c.Timeout)
	}
	if gap := max(c.PollInterval, c.Timeout) + tickPeriod; okPoll && okTimeout && bad["dedup"] == "" && c.Dedup <= gap {
		bad["dedup"] = fmt.Sprintf("%v must exceed poll_interval and timeout by a tick (%v), or a held card seems to leave between polls", c.Dedup, gap)
	}
	return bad
}
