package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/cloud/internal/httpserver"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// TestReleases: a binary uploaded under its SHA-256 (past the API's body
// cap, behind the real guard) is served to anyone with ranges; a body that
// is not what its path names is refused; PUT …/release hands a manifest
// for {id} to the publisher and refuses the rest.
func TestReleases(t *testing.T) {
	_, a := setup(t)
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(httpserver.Guard(mux, 64<<10))
	defer srv.Close()
	do := func(method, path string, body []byte, hdr ...string) (int, string, http.Header) {
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	bin := bytes.Repeat([]byte("release!"), 40000) // 320 KB: past the 64 KiB cap
	s := sha256.Sum256(bin)
	sum := hex.EncodeToString(s[:])
	if code, body, _ := do(http.MethodPut, "/api/v1/releases/"+sum, bin); code != http.StatusNotImplemented {
		t.Fatalf("without a release dir: %d %s", code, body)
	}
	var published []string
	var fail error
	a.WithReleases(t.TempDir(), func(_ context.Context, gw string, m []byte) error {
		if fail != nil {
			return fail
		}
		published = append(published, gw)
		return nil
	})
	if code, body, _ := do(http.MethodPut, "/api/v1/releases/"+strings.Repeat("0", 64), bin); code != 400 ||
		!strings.Contains(body, "its SHA-256 is "+sum) {
		t.Fatalf("a body that is not its name: %d %s", code, body)
	}
	if code, body, _ := do(http.MethodPut, "/api/v1/releases/ABC", bin); code != 400 || !strings.Contains(body, "sha256") {
		t.Fatalf("a bad name: %d %s", code, body)
	}
	if code, body, _ := do(http.MethodGet, "/releases/"+sum, nil); code != 404 {
		t.Fatalf("before the upload: %d %s", code, body)
	}
	if code, body, _ := do(http.MethodPut, "/api/v1/releases/"+sum, bin); code != 200 ||
		!strings.Contains(body, `"path":"/releases/`+sum+`"`) || !strings.Contains(body, `"size":320000`) {
		t.Fatalf("upload: %d %s", code, body)
	}
	code, body, hdr := do(http.MethodGet, "/releases/"+sum, nil)
	if code != 200 || body != string(bin) || hdr.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("GET: %d, %d bytes, %v", code, len(body), hdr)
	}
	code, body, hdr = do(http.MethodGet, "/releases/"+sum, nil, "Range", "bytes=300000-")
	if code != http.StatusPartialContent || body != string(bin[300000:]) || hdr.Get("Content-Range") != "bytes 300000-319999/320000" {
		t.Fatalf("GET a range: %d, %d bytes, %v", code, len(body), hdr)
	}

	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	manifest := func(gws ...string) []byte {
		b, err := telemetry.EncodeRelease(telemetry.SignRelease(telemetry.Release{Version: "1.6.0", Serial: 3, Issued: t0,
			Gateways: gws, Artifacts: []telemetry.Artifact{{Target: "linux/arm64", URL: srv.URL + "/releases/" + sum,
				Size: int64(len(bin)), SHA256: sum}}}, key))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		path string
		body []byte
		code int
		want string
	}{
		{"/api/v1/stations/gw1/release", []byte("not json"), 400, "body: release manifest"},
		{"/api/v1/stations/gw1/release", manifest("gw2"), 400, `id: the release is for [gw2]`},
		{"/api/v1/stations/gw1/release", bytes.Repeat([]byte(" "), telemetry.MaxReleaseBytes+1), 413, "larger than"},
		{"/api/v1/stations/gw1/release", manifest("gw1", "gw2"), 200, `"serial":3`},
		{"/api/v1/stations/gw-new/release", manifest("*"), 200, `"topic":"fieldwatch/v1/gw-new/release"`},
	} {
		if code, body, _ := do(http.MethodPut, tc.path, tc.body); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("PUT %s: %d %s, want %d …%s…", tc.path, code, body, tc.code, tc.want)
		}
	}
	if strings.Join(published, " ") != "gw1 gw-new" {
		t.Errorf("published to %q", published)
	}
	for err, code := range map[error]int{errors.New("not connected"): 503, ErrConfigUnsupported: 501} {
		fail = err
		if got, body, _ := do(http.MethodPut, "/api/v1/stations/gw1/release", manifest("gw1")); got != code {
			t.Errorf("publisher failing with %v: %d %s, want %d", err, got, body, code)
		}
	}
}
