package app

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestSecretWarnings: the running cloud sends InfluxDB the token however
// it was given, warns at start (before it listens) when it came from
// -influx-token, naming /proc/PID/cmdline, and warns about a secret file
// group or others can read, with its path and mode; never with the secret.
func TestSecretWarnings(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	influx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("Authorization")] = true
		mu.Unlock()
		if r.URL.Path == "/ping" || r.URL.Path == "/health" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Error(w, `{"code":"internal error","message":"fake"}`, http.StatusInternalServerError)
	}))
	defer influx.Close()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "influx.token")
	os.WriteFile(tokenFile, []byte("tok-from-file\n"), 0o600)

	tests := []struct {
		name       string
		token      string
		from       config.TokenSource
		mode       os.FileMode
		flagWarn   bool
		looseWarn  bool
		wantHeader string
	}{
		{"token file 0600", "", config.TokenFromConfig, 0o600, false, false, "Token tok-from-file"},
		{"token file 0644", "", config.TokenFromConfig, 0o644, false, true, "Token tok-from-file"},
		{"environment", "tok-from-env", config.TokenFromEnv, 0, false, false, "Token tok-from-env"},
		{"flag", "tok-from-flag", config.TokenFromFlag, 0, true, false, "Token tok-from-flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			clear(seen)
			mu.Unlock()
			var logs testenv.LogBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			if tc.mode != 0 {
				os.Chmod(tokenFile, tc.mode)
			}
			startCloud(t, func(c *config.Config) {
				ix := &c.Store.InfluxDB
				ix.URL, ix.Bucket = influx.URL, "fieldwatch"
				if tc.token != "" {
					ix.Token, ix.TokenFrom = tc.token, tc.from
				} else {
					ix.TokenFile = tokenFile
				}
			}, log)
			// Ready has been called: the start-up warnings are logged.
			out := logs.String()
			if got := strings.Contains(out, "/proc/PID/cmdline"); got != tc.flagWarn {
				t.Errorf("flag warning logged: %v, want %v:\n%s", got, tc.flagWarn, out)
			}
			if tc.flagWarn && !strings.Contains(out, "level=WARN") {
				t.Errorf("the flag warning is not at warn level:\n%s", out)
			}
			looseLine := "path=" + tokenFile + " mode=0644"
			if got := strings.Contains(out, looseLine); got != tc.looseWarn {
				t.Errorf("loose-file warning (%s) logged: %v, want %v:\n%s", looseLine, got, tc.looseWarn, out)
			}
			if strings.Contains(out, "tok-from-") {
				t.Errorf("the token is in the log:\n%s", out)
			}
			mu.Lock()
			defer mu.Unlock()
			if !seen[tc.wantHeader] {
				t.Errorf("InfluxDB never saw Authorization %q (saw %v)", tc.wantHeader, seen)
			}
		})
	}
}
