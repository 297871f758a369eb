package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Signature headers of webhook messages. The signature is
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)), where
// timestamp is the X-Fieldwatch-Timestamp header (Unix seconds) and body the
// raw request body, so a captured message cannot be replayed with another
// timestamp.
const (
	SignatureHeader = "X-Fieldwatch-Signature"
	TimestampHeader = "X-Fieldwatch-Timestamp"
)

// Sign returns the X-Fieldwatch-Signature value of body sent at timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether signature (the X-Fieldwatch-Signature value) is
// body's at timestamp under secret, in constant time. Receivers should also
// refuse timestamps far from their clock.
func Verify(secret []byte, timestamp string, body []byte, signature string) bool {
	want := Sign(secret, timestamp, body)
	return strings.HasPrefix(signature, "sha256=") && hmac.Equal([]byte(want), []byte(signature))
}
