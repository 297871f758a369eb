package telemetry

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

func testRelease() Release {
	return Release{Version: "1.5.0", Serial: 4, Issued: time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC),
		Gateways: []string{"farm-north", "buoy-7"},
		Artifacts: []Artifact{
			{Target: "linux/arm64", URL: "https://cloud.example/releases/" + strings.Repeat("ab", 32), Size: 12345678,
				SHA256: strings.Repeat("ab", 32)},
			{Target: "linux/armv7", URL: "http://10.0.0.1:8080/r?a=1&b=2", Size: 1, SHA256: strings.Repeat("0f", 32)},
		}}
}

func signedRelease(t testing.TB) []byte {
	b, err := EncodeRelease(SignRelease(testRelease(), testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReleaseRoundTrip(t *testing.T) {
	r, err := DecodeRelease(signedRelease(t))
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != "1.5.0" || r.Serial != 4 || len(r.Artifacts) != 2 || r.Artifacts[1].URL != "http://10.0.0.1:8080/r?a=1&b=2" {
		t.Fatalf("decoded %+v", r)
	}
	trusted := []ed25519.PublicKey{testKey(2).Public().(ed25519.PublicKey), testKey(1).Public().(ed25519.PublicKey)}
	if err := r.Verify(trusted); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := r.Verify(trusted[:1]); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Verify with another key: %v, want ErrUnknownKey", err)
	}
	if !r.For("buoy-7") || r.For("farm-south") {
		t.Error("For: wrong addressing")
	}
	if a, ok := r.Artifact("linux/arm64"); !ok || a.Size != 12345678 {
		t.Errorf("Artifact(linux/arm64) = %+v, %v", a, ok)
	}
	if _, ok := r.Artifact("linux/mipsle"); ok {
		t.Error("Artifact(linux/mipsle) found")
	}
	// Every signed field is covered.
	for name, change := range map[string]func(*Release){
		"version":  func(r *Release) { r.Version = "1.5.1" },
		"serial":   func(r *Release) { r.Serial++ },
		"issued":   func(r *Release) { r.Issued = r.Issued.Add(time.Nanosecond) },
		"gateways": func(r *Release) { r.Gateways = []string{"farm-north"} },
		"any":      func(r *Release) { r.Gateways = []string{AnyGateway} },
		"target":   func(r *Release) { r.Artifacts[0].Target = "linux/amd64" },
		"url":      func(r *Release) { r.Artifacts[0].URL += "x" },
		"size":     func(r *Release) { r.Artifacts[0].Size++ },
		"sha256":   func(r *Release) { r.Artifacts[1].SHA256 = strings.Repeat("0e", 32) },
		"dropped":  func(r *Release) { r.Artifacts = r.Artifacts[:1] },
	} {
		c := r
		c.Gateways = append([]string{}, r.Gateways...)
		c.Artifacts = append([]Artifact{}, r.Artifacts...)
		change(&c)
		if err := c.Verify(trusted); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed: Verify = %v, want ErrBadSignature", name, err)
		}
	}
	any := SignRelease(Release{Version: "2", Serial: 1, Issued: time.Now(), Gateways: []string{AnyGateway},
		Artifacts: testRelease().Artifacts[:1]}, testKey(1))
	if !any.For("whoever") {
		t.Error(`a release for "*" is not for every gateway`)
	}
}

func TestDecodeReleaseRefuses(t *testing.T) {
	good := signedRelease(t)
	with := withField(t, good)
	art := func(change func(map[string]any)) []byte {
		a := map[string]any{"target": "linux/arm64", "url": "https://x.example/a", "size": 10, "sha256": strings.Repeat("ab", 32)}
		change(a)
		return with("artifacts", []any{a})
	}
	f := func(name string, data []byte, want string) {
		t.Helper()
		_, err := DecodeRelease(data)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: DecodeRelease = %v, want an error containing %q", name, err, want)
		}
	}
	f("too large", bytes.Repeat([]byte(" "), MaxReleaseBytes+1), "more than")
	f("not JSON", []byte("version: 1"), "release manifest")
	f("trailing", append(append([]byte{}, good...), []byte(` {}`)...), "after top-level value")
	f("unknown field", with("extra", 1), "unknown field")
	f("missing serial", with("serial", nil), "serial is missing")
	f("missing artifacts", with("artifacts", nil), "artifacts is missing")
	f("format 2", with("format", 2), "format 2")
	f("serial 0", with("serial", 0), "at least 1")
	f("negative serial", with("serial", -1), "release manifest")
	f("bad version", with("version", "1.5 beta"), "release version")
	f("no gateways", with("gateways", []string{}), "gateways")
	f("bad gateway", with("gateways", []string{"a/b"}), "gateway")
	f("star among others", with("gateways", []string{"*", "a"}), "gateway")
	f("no artifacts", with("artifacts", []any{}), "0 artifacts")
	f("bad key", with("key", "rsa:AAAA"), "key")
	f("short sig", with("sig", "AAAA"), "sig is not")
	f("zero issued", with("issued", "0001-01-01T00:00:00Z"), "issued is missing")
	f("artifact unknown field", art(func(a map[string]any) { a["mode"] = 1 }), "unknown field")
	f("artifact bad target", art(func(a map[string]any) { a["target"] = "arm64" }), "GOOS/arch")
	f("artifact ftp", art(func(a map[string]any) { a["url"] = "ftp://x.example/a" }), "http or https")
	f("artifact relative", art(func(a map[string]any) { a["url"] = "/releases/a" }), "http or https")
	f("artifact credentials", art(func(a map[string]any) { a["url"] = "https://u:p@x.example/a" }), "credentials")
	f("artifact space", art(func(a map[string]any) { a["url"] = "https://x.example/a b" }), "control")
	f("artifact size 0", art(func(a map[string]any) { delete(a, "size") }), "size 0")
	f("artifact huge", art(func(a map[string]any) { a["size"] = MaxArtifactBytes + 1 }), "size")
	f("artifact upper hex", art(func(a map[string]any) { a["sha256"] = strings.Repeat("AB", 32) }), "sha256")
	f("artifact short hash", art(func(a map[string]any) { a["sha256"] = "ab" }), "sha256")
	two := map[string]any{"target": "linux/arm64", "url": "https://x.example/a", "size": 10, "sha256": strings.Repeat("ab", 32)}
	f("target twice", with("artifacts", []any{two, two}), "twice")
}

func TestStateUpdateIsOptional(t *testing.T) {
	s, err := DecodeState([]byte(`{"state":"online","update":{"serial":3,"pending":"1.6.0","phase":"waiting","rollback":{"from":"1.6.0","to":"1.5.0","at":"2026-12-02T16:00:00Z","reason":"x"},"future":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if u := s.Update; u == nil || u.Serial != 3 || u.Pending != "1.6.0" || u.Rollback == nil || u.Rollback.To != "1.5.0" {
		t.Fatalf("update %+v", s.Update)
	}
	if _, err := DecodeState([]byte(`{"state":"online","update":{"pending":"a b"}}`)); err == nil {
		t.Error("a pending version that is not an id was accepted")
	}
}

// FuzzDecodeRelease: no input panics, and what decodes encodes again to a
// manifest that decodes to the same signed bytes.
func FuzzDecodeRelease(f *testing.F) {
	f.Add(signedRelease(f))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":1,"version":"1","serial":1,"issued":"2026-01-01T00:00:00Z","gateways":["*"],"artifacts":[{"target":"linux/amd64","url":"http://h/a","size":1,"sha256":""}],"key":"ed25519:","sig":""}`))
	trusted := []ed25519.PublicKey{testKey(1).Public().(ed25519.PublicKey)}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRelease(data)
		if err != nil {
			return
		}
		_ = r.Verify(trusted)
		b, err := EncodeRelease(r)
		if err != nil {
			t.Fatalf("decoded manifest does not encode: %v", err)
		}
		r2, err := DecodeRelease(b)
		if err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v", err)
		}
		if !bytes.Equal(r.SignedBytes(), r2.SignedBytes()) || r.Sig != r2.Sig || r.Key != r2.Key {
			t.Fatal("re-encoded manifest differs")
		}
	})
}
