package telemetry

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"
)

// testKey is a fixed key, so the fuzz seeds are stable.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func signedEnvelope(t testing.TB) []byte {
	e := SignConfig(ConfigEnvelope{Gateway: "farm-north", Version: 7,
		Issued: time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC), Config: "gateway:\n  id: farm-north\n"}, testKey(1))
	b, err := EncodeConfig(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConfigEnvelopeRoundTrip(t *testing.T) {
	b := signedEnvelope(t)
	e, err := DecodeConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if e.Gateway != "farm-north" || e.Version != 7 || e.Config != "gateway:\n  id: farm-north\n" {
		t.Fatalf("decoded %+v", e)
	}
	trusted := []ed25519.PublicKey{testKey(2).Public().(ed25519.PublicKey), testKey(1).Public().(ed25519.PublicKey)}
	if err := e.Verify(trusted); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := e.Verify(trusted[:1]); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Verify with another key: %v, want ErrUnknownKey", err)
	}
	// Every signed field is covered.
	for name, change := range map[string]func(*ConfigEnvelope){
		"gateway": func(e *ConfigEnvelope) { e.Gateway = "farm-south" },
		"version": func(e *ConfigEnvelope) { e.Version++ },
		"issued":  func(e *ConfigEnvelope) { e.Issued = e.Issued.Add(time.Nanosecond) },
		"config":  func(e *ConfigEnvelope) { e.Config += "# more\n" },
	} {
		c := e
		change(&c)
		if err := c.Verify(trusted); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed: Verify = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestDecodeConfigRefuses(t *testing.T) {
	good := signedEnvelope(t)
	with := withField(t, good)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"too large", bytes.Repeat([]byte(" "), MaxConfigEnvelopeBytes+1), "more than"},
		{"not JSON", []byte("gateway: x"), "config envelope"},
		{"trailing", append(append([]byte{}, good...), []byte(` {}`)...), "after top-level value"},
		{"unknown field", with("extra", 1), "unknown field"},
		{"missing sig", with("sig", nil), "sig is missing"},
		{"missing version", with("version", nil), "version is missing"},
		{"format 2", with("format", 2), "format 2"},
		{"version 0", with("version", 0), "at least 1"},
		{"negative version", with("version", -1), "config envelope"},
		{"bad gateway", with("gateway", "a/b"), "gateway"},
		{"bad key", with("key", "rsa:AAAA"), "key"},
		{"short sig", with("sig", "AAAA"), "sig is not"},
		{"empty config", with("config", " \n"), "config is empty"},
		{"huge config", with("config", strings.Repeat("#", MaxConfigYAMLBytes+1)), "more than"},
		{"zero issued", with("issued", "0001-01-01T00:00:00Z"), "issued is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeConfig(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeConfig = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// withField returns a function making good (a JSON object) with field k
// set to v, or removed when v is nil.
func withField(t *testing.T, good []byte) func(k string, v any) []byte {
	var m map[string]any
	if err := json.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	return func(k string, v any) []byte {
		c := maps.Clone(m)
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		b, _ := json.Marshal(c)
		return b
	}
}

func TestParsePublicKey(t *testing.T) {
	pub := testKey(3).Public().(ed25519.PublicKey)
	got, err := ParsePublicKey(FormatPublicKey(pub))
	if err != nil || !got.Equal(pub) {
		t.Fatalf("ParsePublicKey(FormatPublicKey) = %v, %v", got, err)
	}
	for _, s := range []string{"", "ed25519:", "ed25519:AAAA", "ED25519:" + FormatPublicKey(pub)[8:], FormatPublicKey(pub) + "="} {
		if _, err := ParsePublicKey(s); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", s)
		}
	}
}

func TestStateConfigIsOptional(t *testing.T) {
	// An older gateway's state has no config; a newer one's is read, and
	// unknown fields of a still newer one do not refuse the state.
	for _, tc := range []struct {
		in   string
		want *ConfigState
	}{
		{`{"state":"online"}`, nil},
		{`{"state":"online","config":{"version":3,"source":"remote","rollback":{"from":4,"to":3,"at":"2026-12-02T16:00:00Z","reason":"x"}}}`,
			&ConfigState{Version: 3, Source: "remote", Rollback: &ConfigRollback{From: 4, To: 3, At: time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC), Reason: "x"}}},
		{`{"state":"online","config":{"version":0,"source":"local","future":1},"future":2}`, &ConfigState{Source: "local"}},
	} {
		s, err := DecodeState([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		g, _ := json.Marshal(s.Config)
		w, _ := json.Marshal(tc.want)
		if !bytes.Equal(g, w) {
			t.Errorf("%s: config %s, want %s", tc.in, g, w)
		}
	}
	if _, err := DecodeState([]byte(`{"state":"online","config":{"source":"elsewhere"}}`)); err == nil {
		t.Error("a config source that is neither local nor remote was accepted")
	}
}

// FuzzDecodeConfig: no input panics, and what decodes encodes again to an
// envelope that decodes to the same.
func FuzzDecodeConfig(f *testing.F) {
	f.Add(signedEnvelope(f))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":1,"gateway":"g","version":1,"issued":"2026-01-01T00:00:00Z","config":"a: b","key":"ed25519:","sig":""}`))
	trusted := []ed25519.PublicKey{testKey(1).Public().(ed25519.PublicKey)}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeConfig(data)
		if err != nil {
			return
		}
		_ = e.Verify(trusted)
		b, err := EncodeConfig(e)
		if err != nil {
			t.Fatalf("decoded envelope does not encode: %v", err)
		}
		e2, err := DecodeConfig(b)
		if err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v", err)
		}
		if !bytes.Equal(e.SignedBytes(), e2.SignedBytes()) || e.Sig != e2.Sig || e.Key != e2.Key {
			t.Fatal("re-encoded envelope differs")
		}
	})
}
