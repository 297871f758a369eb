package telemetry

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A gateway release travels as a signed manifest, retained on each
// gateway's release topic (docs/fleet.md, Binary updates; docs/wire.md).
// It names the release's version, a serial that only grows (a gateway
// takes nothing at or below the serial it took last, so an old manifest
// cannot be replayed to downgrade it: going back to an older binary is a
// new manifest with a higher serial), the gateways it is for, and per
// target the URL, size and SHA-256 of the binary. The signature (ed25519,
// the fleet keys of the config envelope) covers all of it, so the
// binary's bytes are fixed by the operator's key wherever it is fetched
// from.

// ReleaseFormat is a release manifest's format number.
const ReleaseFormat = 1

// AnyGateway, as a release's only gateway, addresses every gateway that
// trusts the key: one signature for a rollout to a group.
const AnyGateway = "*"

// Bounds of a release manifest, checked before it is parsed. 64 KiB is the
// cloud's default HTTP body cap.
const (
	MaxReleaseBytes     = 64 << 10
	MaxReleaseGateways  = 1024
	MaxReleaseArtifacts = 16
	MaxArtifactURLLen   = 2048
	// MaxArtifactBytes bounds a binary (the gateway is about 20 MB).
	MaxArtifactBytes = 256 << 20
)

// ReleaseTopic is where the cloud publishes gateway gw's release manifest,
// retained.
func ReleaseTopic(gw string) string { return TopicRoot + "/" + gw + "/release" }

// Release is a signed release manifest.
type Release struct {
	Format int `json:"format"`
	// Version is the release's version string, as the binary reports it
	// (-X …/internal/version.Version): letters, digits, _ . -.
	Version string `json:"version"`
	// Serial grows with every manifest the key's holder signs, ≥ 1.
	Serial uint64    `json:"serial"`
	Issued time.Time `json:"issued"`
	// Gateways are the gateway ids the release is for, or AnyGateway alone.
	Gateways  []string   `json:"gateways"`
	Artifacts []Artifact `json:"artifacts"`
	Key       string     `json:"key"` // the signing key's public half, "ed25519:…"
	Sig       string     `json:"sig"` // base64 ed25519 signature of SignedBytes
}

// Artifact is one target's binary.
type Artifact struct {
	// Target is GOOS/arch with arch as the gateway reports it in its
	// state (GOARCH, and for arm its version): linux/armv7, linux/arm64,
	// linux/amd64, linux/mipsle.
	Target string `json:"target"`
	// URL is where to fetch it: http or https, absolute.
	URL    string `json:"url"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lowercase hex
}

// SignedBytes is what a release's signature covers: a domain string, then
// the version, serial, issued time, the gateways (comma-separated) and
// each artifact's target, URL, size and SHA-256, separated by NUL bytes,
// which none of them can hold.
func (r *Release) SignedBytes() []byte {
	var b bytes.Buffer
	b.WriteString("fieldwatch release v1")
	fields := []string{r.Version, strconv.FormatUint(r.Serial, 10), r.Issued.UTC().Format(time.RFC3339Nano),
		strings.Join(r.Gateways, ",")}
	for _, a := range r.Artifacts {
		fields = append(fields, a.Target, a.URL, strconv.FormatInt(a.Size, 10), a.SHA256)
	}
	for _, f := range fields {
		b.WriteByte(0)
		b.WriteString(f)
	}
	return b.Bytes()
}

// SignRelease fills in r's format, key and signature with priv.
func SignRelease(r Release, priv ed25519.PrivateKey) Release {
	r.Format = ReleaseFormat
	r.Issued = r.Issued.UTC()
	r.Key, r.Sig = sign(priv, r.SignedBytes())
	return r
}

// Verify checks that r is signed by one of trusted: ErrUnknownKey when its
// key is none of them, ErrBadSignature when the signature does not match.
func (r *Release) Verify(trusted []ed25519.PublicKey) error {
	return verifySigned(r.Key, r.Sig, r.SignedBytes(), trusted)
}

// For reports whether the release is addressed to gateway gw.
func (r *Release) For(gw string) bool {
	return slices.Equal(r.Gateways, []string{AnyGateway}) || slices.Contains(r.Gateways, gw)
}

// Artifact returns the release's binary for target.
func (r *Release) Artifact(target string) (Artifact, bool) {
	for _, a := range r.Artifacts {
		if a.Target == target {
			return a, true
		}
	}
	return Artifact{}, false
}

// EncodeRelease encodes a signed release as JSON.
func EncodeRelease(r Release) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // a URL's & stays one byte
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// DecodeRelease parses a release manifest strictly: bounded, no unknown or
// missing field, nothing after it, every field well formed. It does not
// verify the signature (Verify does).
func DecodeRelease(data []byte) (Release, error) {
	var r Release
	if len(data) > MaxReleaseBytes {
		return r, fmt.Errorf("release manifest is %d bytes, more than %d", len(data), MaxReleaseBytes)
	}
	if err := decodeStrict("release manifest", data, &r, "format", "version", "serial", "issued", "gateways",
		"artifacts", "key", "sig"); err != nil {
		return r, err
	}
	// json's DisallowUnknownFields holds for the artifacts too; a missing
	// artifact field is zero, which check refuses.
	return r, r.check()
}

// CheckVersion checks a release version string.
func CheckVersion(v string) error { return CheckName("release version", v) }

func (r *Release) check() error {
	const what = "release manifest"
	if r.Format != ReleaseFormat {
		return fmt.Errorf("%s: format %d is not %d", what, r.Format, ReleaseFormat)
	}
	if err := CheckVersion(r.Version); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if r.Serial == 0 {
		return fmt.Errorf("%s: serial must be at least 1", what)
	}
	if r.Issued.IsZero() {
		return fmt.Errorf("%s: issued is missing", what)
	}
	if err := checkReleaseGateways(r.Gateways); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(r.Artifacts) == 0 || len(r.Artifacts) > MaxReleaseArtifacts {
		return fmt.Errorf("%s: %d artifacts, not 1 to %d", what, len(r.Artifacts), MaxReleaseArtifacts)
	}
	seen := map[string]bool{}
	for i, a := range r.Artifacts {
		if err := a.check(); err != nil {
			return fmt.Errorf("%s: artifacts[%d]: %w", what, i, err)
		}
		if seen[a.Target] {
			return fmt.Errorf("%s: artifacts[%d]: target %s twice", what, i, a.Target)
		}
		seen[a.Target] = true
	}
	return checkKeySig(what, r.Key, r.Sig)
}

func checkReleaseGateways(gws []string) error {
	if slices.Equal(gws, []string{AnyGateway}) {
		return nil
	}
	if len(gws) == 0 || len(gws) > MaxReleaseGateways {
		return fmt.Errorf("gateways: %d, not 1 to %d (or %q alone)", len(gws), MaxReleaseGateways, AnyGateway)
	}
	for _, g := range gws {
		if err := CheckName("gateway", g); err != nil {
			return fmt.Errorf("gateways: %w", err)
		}
	}
	return nil
}

// CheckTarget checks a target's form: GOOS/arch, each an id of lowercase
// letters and digits.
func CheckTarget(t string) error {
	goos, arch, ok := strings.Cut(t, "/")
	lower := func(s string) bool {
		return s != "" && len(s) <= 16 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789") == ""
	}
	if !ok || !lower(goos) || !lower(arch) {
		return fmt.Errorf("target %.40q is not GOOS/arch (linux/arm64, linux/armv7)", t)
	}
	return nil
}

func (a *Artifact) check() error {
	if err := CheckTarget(a.Target); err != nil {
		return err
	}
	if len(a.URL) > MaxArtifactURLLen || !utf8.ValidString(a.URL) || strings.ContainsFunc(a.URL, func(r rune) bool {
		return r < 0x21 || r == 0x7f
	}) {
		return fmt.Errorf("url: not at most %d bytes without spaces or control characters", MaxArtifactURLLen)
	}
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return fmt.Errorf("url %.60q is not an absolute http or https URL without credentials", a.URL)
	}
	if a.Size <= 0 || a.Size > MaxArtifactBytes {
		return fmt.Errorf("size %d is not 1 to %d bytes", a.Size, MaxArtifactBytes)
	}
	if b, err := hex.DecodeString(a.SHA256); err != nil || len(b) != 32 || strings.ToLower(a.SHA256) != a.SHA256 {
		return errors.New("sha256 is not 64 lowercase hex digits")
	}
	return nil
}

// UpdateState is what a gateway reports of its binary updates in its state
// message (absent from older gateways, ignored by older clouds). The
// version running is State.Version.
type UpdateState struct {
	// Serial is the newest release serial taken.
	Serial uint64 `json:"serial,omitempty"`
	// Pending is the release being fetched or waiting for its window
	// (its version), Phase where it stands: downloading, waiting (for the
	// update window), trying (the new binary on trial).
	Pending string `json:"pending,omitempty"`
	Phase   string `json:"phase,omitempty"`
	// Downloaded and Size are the pending binary's bytes so far and in all.
	Downloaded int64 `json:"downloaded,omitempty"`
	Size       int64 `json:"size,omitempty"`
	// Previous is the version kept to go back to.
	Previous string `json:"previous,omitempty"`
	// Error is why the last release was refused or failed, ErrorAt when,
	// ErrorSerial the serial of the manifest it is about (0: not known,
	// e.g. a manifest that did not decode, or an older gateway), so that
	// a rollout reads the verdict on its own serial.
	Error       string    `json:"error,omitempty"`
	ErrorAt     time.Time `json:"error_at,omitzero"`
	ErrorSerial uint64    `json:"error_serial,omitempty"`
	// Rollback is the last release undone because it did not become
	// healthy.
	Rollback *UpdateRollback `json:"rollback,omitempty"`
}

// UpdateRollback is a release undone: From is its version, To the one
// running again, Serial its manifest's serial (0 from an older gateway).
type UpdateRollback struct {
	From   string    `json:"from"`
	To     string    `json:"to"`
	Serial uint64    `json:"serial,omitempty"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

func (u *UpdateState) check() error {
	for _, v := range []string{u.Pending, u.Previous} {
		if v != "" && CheckVersion(v) != nil {
			return fmt.Errorf("update: version %.40q is not an id", v)
		}
	}
	if len(u.Phase) > 16 || len(u.Error) > MaxConfigErrorLen || !utf8.ValidString(u.Error) {
		return fmt.Errorf("update: error is not UTF-8 of at most %d bytes", MaxConfigErrorLen)
	}
	if u.Downloaded < 0 || u.Size < 0 {
		return errors.New("update: negative size")
	}
	if r := u.Rollback; r != nil && (len(r.Reason) > MaxConfigErrorLen || !utf8.ValidString(r.Reason) ||
		len(r.From) > MaxNameLen || len(r.To) > MaxNameLen) {
		return fmt.Errorf("update: rollback is not UTF-8 of at most %d bytes", MaxConfigErrorLen)
	}
	return nil
}
