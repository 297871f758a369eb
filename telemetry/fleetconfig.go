package telemetry

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A gateway's desired configuration travels from the cloud as a signed
// envelope, retained on the gateway's config topic (docs/fleet.md,
// docs/wire.md). The signature (ed25519) covers the gateway, the version,
// the time it was issued and the configuration's text, so none of them can
// be changed, and a configuration for one gateway cannot be replayed to
// another.

// ConfigFormat is the envelope's format number.
const ConfigFormat = 1

// Bounds of a config envelope, checked before it is parsed. 64 KiB is also
// the cloud's default HTTP body cap (http.max_body_bytes), through which
// fieldwatch-cloud fleet push sends it; a config of 300 devices is about
// 30 KiB.
const (
	MaxConfigEnvelopeBytes = 64 << 10
	MaxConfigYAMLBytes     = 48 << 10
)

// KeyPrefix starts a public key's text form: "ed25519:" and the 32 bytes
// in standard base64.
const KeyPrefix = "ed25519:"

// Errors a config envelope's verification returns.
var (
	ErrUnknownKey   = errors.New("signed by a key this gateway does not trust")
	ErrBadSignature = errors.New("signature does not match")
)

// ConfigTopic is where the cloud publishes gateway gw's desired
// configuration, retained.
func ConfigTopic(gw string) string { return TopicRoot + "/" + gw + "/config" }

// ConfigEnvelope is a signed desired configuration.
type ConfigEnvelope struct {
	Format  int       `json:"format"`
	Gateway string    `json:"gateway"`
	Version uint64    `json:"version"` // monotonic per gateway, ≥ 1
	Issued  time.Time `json:"issued"`
	Config  string    `json:"config"` // the gateway.yaml text
	Key     string    `json:"key"`    // the signing key's public half, "ed25519:…"
	Sig     string    `json:"sig"`    // base64 ed25519 signature of SignedBytes
}

// SignedBytes is what the signature covers: a domain string, then the
// gateway, version, issued time (RFC 3339, nanoseconds, UTC) and the
// config text, separated by NUL bytes (which none of the first three can
// hold; the config comes last).
func (e *ConfigEnvelope) SignedBytes() []byte {
	var b bytes.Buffer
	b.WriteString("fieldwatch config v1\x00")
	b.WriteString(e.Gateway)
	b.WriteByte(0)
	b.WriteString(strconv.FormatUint(e.Version, 10))
	b.WriteByte(0)
	b.WriteString(e.Issued.UTC().Format(time.RFC3339Nano))
	b.WriteByte(0)
	b.WriteString(e.Config)
	return b.Bytes()
}

// ConfigSum is the SHA-256 of a config text, hex: how a gateway knows a
// retained envelope delivered again from one it has seen.
func ConfigSum(config string) string {
	s := sha256.Sum256([]byte(config))
	return hex.EncodeToString(s[:])
}

// SignConfig fills in e's format, key and signature with priv.
func SignConfig(e ConfigEnvelope, priv ed25519.PrivateKey) ConfigEnvelope {
	e.Format = ConfigFormat
	e.Issued = e.Issued.UTC()
	e.Key, e.Sig = sign(priv, e.SignedBytes())
	return e
}

// EncodeConfig encodes a signed envelope as JSON.
func EncodeConfig(e ConfigEnvelope) ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // YAML's > and & stay one byte
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// DecodeConfig parses an envelope strictly: bounded, no unknown or missing
// fields, nothing after it, every field well formed. It does not verify
// the signature (Verify does).
func DecodeConfig(data []byte) (ConfigEnvelope, error) {
	var e ConfigEnvelope
	if len(data) > MaxConfigEnvelopeBytes {
		return e, fmt.Errorf("config envelope is %d bytes, more than %d", len(data), MaxConfigEnvelopeBytes)
	}
	if err := decodeStrict("config envelope", data, &e, "format", "gateway", "version", "issued", "config", "key", "sig"); err != nil {
		return e, err
	}
	if err := e.check(); err != nil {
		return e, err
	}
	return e, nil
}

// decodeStrict decodes one JSON object into v: every field of required
// present, no unknown field, nothing after it. what names it in errors.
func decodeStrict(what string, data []byte, v any, required ...string) error {
	var seen map[string]json.RawMessage
	if err := json.Unmarshal(data, &seen); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for _, f := range required {
		if _, ok := seen[f]; !ok {
			return fmt.Errorf("%s: %s is missing", what, f)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s: data after the object", what)
	}
	return nil
}

func (e *ConfigEnvelope) check() error {
	if e.Format != ConfigFormat {
		return fmt.Errorf("config envelope: format %d is not %d", e.Format, ConfigFormat)
	}
	if err := CheckName("gateway", e.Gateway); err != nil {
		return fmt.Errorf("config envelope: %w", err)
	}
	if e.Version == 0 {
		return errors.New("config envelope: version must be at least 1")
	}
	if e.Issued.IsZero() {
		return errors.New("config envelope: issued is missing")
	}
	if len(e.Config) > MaxConfigYAMLBytes {
		return fmt.Errorf("config envelope: config is %d bytes, more than %d", len(e.Config), MaxConfigYAMLBytes)
	}
	if strings.TrimSpace(e.Config) == "" {
		return errors.New("config envelope: config is empty")
	}
	if !utf8.ValidString(e.Config) {
		return errors.New("config envelope: config is not valid UTF-8")
	}
	return checkKeySig("config envelope", e.Key, e.Sig)
}

// Verify checks that e is signed by one of trusted: ErrUnknownKey when its
// key is none of them, ErrBadSignature when the signature does not match.
func (e *ConfigEnvelope) Verify(trusted []ed25519.PublicKey) error {
	return verifySigned(e.Key, e.Sig, e.SignedBytes(), trusted)
}

// verifySigned checks that sig (base64) is key's signature of msg and key
// (text form) is one of trusted: a config envelope's or a command's.
func verifySigned(key, sig string, msg []byte, trusted []ed25519.PublicKey) error {
	pub, err := ParsePublicKey(key)
	if err != nil {
		return err
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil {
		return ErrBadSignature
	}
	for _, k := range trusted {
		if k.Equal(pub) {
			if !ed25519.Verify(k, msg, raw) {
				return ErrBadSignature
			}
			return nil
		}
	}
	return ErrUnknownKey
}

// sign returns priv's public key in text form and its signature of msg.
func sign(priv ed25519.PrivateKey, msg []byte) (key, sig string) {
	return FormatPublicKey(priv.Public().(ed25519.PublicKey)), base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg))
}

// checkKeySig checks the form of a signed message's key and signature.
func checkKeySig(what, key, sig string) error {
	if _, err := ParsePublicKey(key); err != nil {
		return fmt.Errorf("%s: key: %w", what, err)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("%s: sig is not %d bytes of base64", what, ed25519.SignatureSize)
	}
	return nil
}

// FormatPublicKey is a public key's text form, "ed25519:" and base64.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return KeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads FormatPublicKey's form.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(s, KeyPrefix)
	if !ok {
		return nil, fmt.Errorf("%.20q… does not start with %q", s, KeyPrefix)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%.20q… is not %d bytes of base64 after %q", s, ed25519.PublicKeySize, KeyPrefix)
	}
	return ed25519.PublicKey(b), nil
}

// ConfigState is what a gateway reports of its configuration in its state
// message (since issue 17; absent from older gateways, ignored by older
// clouds).
type ConfigState struct {
	// Version is the remote configuration running; 0 is the local file.
	Version uint64 `json:"version"`
	// Source is "local" or "remote".
	Source string `json:"source"`
	// Checking is the version under its health check (it runs, and is
	// rolled back unless it proves itself within fleet.grace); 0 for none.
	// A rollout waits for it to end (since issue 17's rollouts; absent
	// from older gateways).
	Checking uint64 `json:"checking,omitempty"`
	// Error is why the last remote configuration was refused or failed,
	// ErrorVersion its version (0 when it did not parse), ErrorAt when.
	Error        string    `json:"error,omitempty"`
	ErrorVersion uint64    `json:"error_version,omitempty"`
	ErrorAt      time.Time `json:"error_at,omitzero"`
	// Rollback is the last automatic rollback.
	Rollback *ConfigRollback `json:"rollback,omitempty"`
}

// ConfigRollback is a remote configuration undone because it failed its
// health check: From is its version, To the one running again.
type ConfigRollback struct {
	From   uint64    `json:"from"`
	To     uint64    `json:"to"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// MaxConfigErrorLen bounds ConfigState.Error and ConfigRollback.Reason.
const MaxConfigErrorLen = 1024

func (c *ConfigState) check() error {
	if c.Source != "local" && c.Source != "remote" {
		return fmt.Errorf("config: source %q is neither local nor remote", c.Source)
	}
	if len(c.Error) > MaxConfigErrorLen || !utf8.ValidString(c.Error) {
		return fmt.Errorf("config: error is not UTF-8 of at most %d bytes", MaxConfigErrorLen)
	}
	if r := c.Rollback; r != nil && (len(r.Reason) > MaxConfigErrorLen || !utf8.ValidString(r.Reason)) {
		return fmt.Errorf("config: rollback reason is not UTF-8 of at most %d bytes", MaxConfigErrorLen)
	}
	return nil
}

// CutText cuts s to at most n bytes at a character boundary, ending in
// "…" when cut.
func CutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n-len("…")]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
