package api

import (
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// TestPutConfig: PUT /api/v1/stations/{id}/config hands a well-formed
// envelope addressed to {id} to the publisher and refuses the rest with
// the status and reason an operator can act on.
func TestPutConfig(t *testing.T) {
	srv, a := setup(t)
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	env := func(gw string) string {
		b, err := telemetry.EncodeConfig(telemetry.SignConfig(telemetry.ConfigEnvelope{Gateway: gw, Version: 3,
			Issued: t0, Config: "gateway: {id: " + gw + "}\n"}, key))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	put := func(path, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := put("/api/v1/stations/gw1/config", env("gw1")); code != http.StatusNotImplemented {
		t.Fatalf("without a publisher: %d %s", code, body)
	}
	var published []string
	var fail error
	a.WithConfigPublisher(func(gw string, e []byte) error {
		if fail != nil {
			return fail
		}
		published = append(published, gw+" "+string(e))
		return nil
	})
	for _, tc := range []struct {
		path, body string
		code       int
		want       string
	}{
		{"/api/v1/stations/gw1/config", "not json", 400, "body: config envelope"},
		{"/api/v1/stations/gw1/config", env("gw2"), 400, `id: the envelope is addressed to \"gw2\"`},
		{"/api/v1/stations/a%2Fb/config", env("gw1"), 400, "id:"},
		{"/api/v1/stations/gw1/config", strings.Repeat(" ", telemetry.MaxConfigEnvelopeBytes+1), 413, "larger than"},
		{"/api/v1/stations/gw1/config", env("gw1"), 200, `"version":3`},
		{"/api/v1/stations/gw-new/config", env("gw-new"), 200, `"topic":"fieldwatch/v1/gw-new/config"`},
	} {
		if code, body := put(tc.path, tc.body); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("PUT %s: %d %s, want %d …%s…", tc.path, code, body, tc.code, tc.want)
		}
	}
	if len(published) != 2 || published[0] != "gw1 "+env("gw1") || !strings.HasPrefix(published[1], "gw-new ") {
		t.Errorf("published %q", published)
	}
	for err, code := range map[error]int{errors.New("not connected"): 503, ErrConfigUnsupported: 501} {
		fail = err
		if got, body := put("/api/v1/stations/gw1/config", env("gw1")); got != code {
			t.Errorf("publisher failing with %v: %d %s, want %d", err, got, body, code)
		}
	}
}
