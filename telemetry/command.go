package telemetry

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// A remote command (docs/fleet.md, Remote commands; docs/wire.md) is signed
// on the operator's machine with a fleet key the gateway trusts, published
// by the cloud on the gateway's cmd topic (not retained: a command is for
// now, and it expires), and answered by the gateway on its reply topic.
// The signature covers every field but the key and itself, so a command
// for one gateway cannot be sent to another, and its id and expiry let the
// gateway refuse a replay.

// CommandFormat is a command's format number.
const CommandFormat = 1

// Command kinds.
const (
	CommandRestart = "restart" // exit with ExitRestart after the reply, for systemd to start it again
	CommandResend  = "resend"  // send the items FromSeq … ToSeq again from the buffer
	CommandRead    = "read"    // poll Device once and reply with its readings
)

// Bounds of commands and replies, checked before they are parsed.
const (
	MaxCommandBytes = 4 << 10
	// MaxCommandLifetime bounds Expires − Issued: a gateway remembers the
	// ids of the commands it took for at least that long.
	MaxCommandLifetime = 10 * time.Minute
	MaxCommandIDLen    = 64
	MaxReplyBytes      = 64 << 10
	// MaxReplyReadings bounds a read's readings in a reply, MaxReplyText
	// its message.
	MaxReplyReadings = 256
	MaxReplyText     = 4 << 10
)

// CmdTopic is where the cloud publishes commands to gateway gw.
func CmdTopic(gw string) string { return TopicRoot + "/" + gw + "/cmd" }

// ReplyTopic is where gateway gw answers its commands.
func ReplyTopic(gw string) string { return TopicRoot + "/" + gw + "/reply" }

// ReplyFilter matches every gateway's reply topic.
const ReplyFilter = TopicRoot + "/+/reply"

// Command is a signed remote command.
type Command struct {
	Format  int       `json:"format"`
	ID      string    `json:"id"` // unique per command: letters, digits, _ . -
	Gateway string    `json:"gateway"`
	Kind    string    `json:"kind"`
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"`
	// resend: the sequence range, FromSeq ≤ ToSeq.
	FromSeq uint64 `json:"from_seq,omitempty"`
	ToSeq   uint64 `json:"to_seq,omitempty"`
	// read: the device.
	Device string `json:"device,omitempty"`
	Key    string `json:"key"` // the signing key's public half, "ed25519:…"
	Sig    string `json:"sig"` // base64 ed25519 signature of SignedBytes
}

// SignedBytes is what a command's signature covers: a domain string, then
// every field but the key and the signature, separated by NUL bytes (none
// of them can hold one).
func (c *Command) SignedBytes() []byte {
	var b bytes.Buffer
	b.WriteString("fieldwatch command v1")
	for _, f := range []string{c.ID, c.Gateway, c.Kind, c.Issued.UTC().Format(time.RFC3339Nano),
		c.Expires.UTC().Format(time.RFC3339Nano), strconv.FormatUint(c.FromSeq, 10), strconv.FormatUint(c.ToSeq, 10), c.Device} {
		b.WriteByte(0)
		b.WriteString(f)
	}
	return b.Bytes()
}

// SignCommand fills in c's format, key and signature with priv.
func SignCommand(c Command, priv ed25519.PrivateKey) Command {
	c.Format = CommandFormat
	c.Issued, c.Expires = c.Issued.UTC(), c.Expires.UTC()
	c.Key, c.Sig = sign(priv, c.SignedBytes())
	return c
}

// Verify checks that c is signed by one of trusted: ErrUnknownKey when its
// key is none of them, ErrBadSignature when the signature does not match.
func (c *Command) Verify(trusted []ed25519.PublicKey) error {
	return verifySigned(c.Key, c.Sig, c.SignedBytes(), trusted)
}

// EncodeCommand encodes a signed command as JSON.
func EncodeCommand(c Command) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

// DecodeCommand parses a command strictly: bounded, no unknown or missing
// field, nothing after it, every field well formed, the arguments its
// kind takes and no others. It does not verify the signature (Verify
// does) nor the expiry (the gateway's clock does).
func DecodeCommand(data []byte) (Command, error) {
	var c Command
	if len(data) > MaxCommandBytes {
		return c, fmt.Errorf("command is %d bytes, more than %d", len(data), MaxCommandBytes)
	}
	if err := decodeStrict("command", data, &c, "format", "id", "gateway", "kind", "issued", "expires", "key", "sig"); err != nil {
		return c, err
	}
	return c, c.check()
}

// CommandID reads a command's id from data that may not be a valid
// command, so a refusal can be answered; "" when there is none.
func CommandID(data []byte) string {
	var c struct {
		ID string `json:"id"`
	}
	if len(data) > MaxCommandBytes || json.Unmarshal(data, &c) != nil || checkCommandID(c.ID) != nil {
		return ""
	}
	return c.ID
}

func checkCommandID(id string) error {
	if len(id) > MaxCommandIDLen {
		return fmt.Errorf("id is longer than %d characters", MaxCommandIDLen)
	}
	return CheckName("command", id)
}

func (c *Command) check() error {
	if c.Format != CommandFormat {
		return fmt.Errorf("command: format %d is not %d", c.Format, CommandFormat)
	}
	if err := checkCommandID(c.ID); err != nil {
		return fmt.Errorf("command: %w", err)
	}
	if err := CheckName("gateway", c.Gateway); err != nil {
		return fmt.Errorf("command: %w", err)
	}
	if c.Issued.IsZero() || c.Expires.IsZero() {
		return errors.New("command: issued and expires must be times")
	}
	if life := c.Expires.Sub(c.Issued); life <= 0 || life > MaxCommandLifetime {
		return fmt.Errorf("command: expires %v after it was issued, not within (0, %v]", life, MaxCommandLifetime)
	}
	switch c.Kind {
	case CommandRestart:
		if c.FromSeq != 0 || c.ToSeq != 0 || c.Device != "" {
			return errors.New("command: restart takes no arguments")
		}
	case CommandResend:
		if c.FromSeq == 0 || c.ToSeq < c.FromSeq || c.Device != "" {
			return errors.New("command: resend takes from_seq ≥ 1 and to_seq ≥ from_seq, and no device")
		}
	case CommandRead:
		if err := CheckName("device", c.Device); err != nil {
			return fmt.Errorf("command: read: %w", err)
		}
		if c.FromSeq != 0 || c.ToSeq != 0 {
			return errors.New("command: read takes a device, no sequences")
		}
	default:
		return fmt.Errorf("command: kind %.20q is not restart, resend or read", c.Kind)
	}
	return checkKeySig("command", c.Key, c.Sig)
}

// Reply results.
const (
	ReplyOK      = "ok"      // done (restart: about to exit)
	ReplyFailed  = "failed"  // taken, and it failed: Error says why
	ReplyRefused = "refused" // not taken: Reason says why, Error in words
)

// Refusal reasons of a command, a reply's Reason and the gateway's
// fieldwatch_gateway_commands_total result label.
const (
	CmdMalformed    = "malformed"
	CmdOtherGateway = "other_gateway"
	CmdUnknownKey   = "unknown_key"
	CmdBadSignature = "bad_signature"
	CmdExpired      = "expired"
	CmdNotYetValid  = "not_yet_valid" // issued in the future beyond the clock skew allowed
	CmdReplayed     = "replayed"
	CmdDisabled     = "disabled" // the gateway takes no commands
)

// CommandReply is a gateway's answer to a command.
type CommandReply struct {
	ID      string    `json:"id"` // the command's; "" when it had none
	Gateway string    `json:"gateway"`
	Kind    string    `json:"kind,omitempty"`
	Time    time.Time `json:"time"`
	Result  string    `json:"result"`
	Reason  string    `json:"reason,omitempty"`
	Error   string    `json:"error,omitempty"`
	// Message says what was done, in words.
	Message string `json:"message,omitempty"`
	// read: the device's readings from this poll.
	Readings []ReplyReading `json:"readings,omitempty"`
	// resend: the range sent again (From … To, Items of them).
	From  uint64 `json:"from_seq,omitempty"`
	To    uint64 `json:"to_seq,omitempty"`
	Items uint64 `json:"items,omitempty"`
}

// ReplyReading is one reading of a read command's poll.
type ReplyReading struct {
	Metric  string    `json:"metric"`
	Value   float64   `json:"value"`
	Unit    string    `json:"unit,omitempty"`
	Quality string    `json:"quality,omitempty"`
	Time    time.Time `json:"time"`
}

// EncodeReply encodes a reply, cutting its texts and readings to bounds.
func EncodeReply(r CommandReply) ([]byte, error) {
	r.Error = CutText(r.Error, MaxReplyText)
	r.Message = CutText(r.Message, MaxReplyText)
	if len(r.Readings) > MaxReplyReadings {
		r.Readings = r.Readings[:MaxReplyReadings]
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

// DecodeReply parses a reply strictly.
func DecodeReply(data []byte) (CommandReply, error) {
	var r CommandReply
	if len(data) > MaxReplyBytes {
		return r, fmt.Errorf("reply is %d bytes, more than %d", len(data), MaxReplyBytes)
	}
	if err := decodeStrict("reply", data, &r, "id", "gateway", "time", "result"); err != nil {
		return r, err
	}
	return r, r.check()
}

func (r *CommandReply) check() error {
	if r.ID != "" {
		if err := checkCommandID(r.ID); err != nil {
			return fmt.Errorf("reply: %w", err)
		}
	}
	if err := CheckName("gateway", r.Gateway); err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	switch r.Result {
	case ReplyOK, ReplyFailed, ReplyRefused:
	default:
		return fmt.Errorf("reply: result %.20q is not ok, failed or refused", r.Result)
	}
	if len(r.Error) > MaxReplyText || len(r.Message) > MaxReplyText || len(r.Reason) > 32 || len(r.Kind) > 32 ||
		!utf8.ValidString(r.Error) || !utf8.ValidString(r.Message) {
		return fmt.Errorf("reply: texts are not UTF-8 of at most %d bytes", MaxReplyText)
	}
	if len(r.Readings) > MaxReplyReadings {
		return fmt.Errorf("reply: more than %d readings", MaxReplyReadings)
	}
	return nil
}
