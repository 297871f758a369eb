package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/api"
	"github.com/fieldwatch/fieldwatch/cloud/internal/basemap"
	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/cloud/internal/httpserver"
	"github.com/fieldwatch/fieldwatch/internal/pmtiles"
)

// bound is how long a test waits for something the server does within a
// configured timeout of a fraction of a second: generous, so a loaded
// machine never fails it, and short of what the unbounded case would take.
const bound = 30 * time.Second

// startCloud runs the cloud on embedded defaults on free loopback ports
// with cfg's changes, until the test ends; it returns the HTTP address.
func startCloud(t *testing.T, change func(*config.Config), log *slog.Logger) string {
	t.Helper()
	addr, _ := startStoppableCloud(t, change, log)
	return addr
}

// startStoppableCloud is startCloud that also returns a stop function,
// which waits until the cloud has stopped (and may be called again).
func startStoppableCloud(t *testing.T, change func(*config.Config), log *slog.Logger) (string, func()) {
	t.Helper()
	a, stop := runCloud(t, change, log)
	return a.HTTP, stop
}

// runCloud is startStoppableCloud returning every address the cloud
// listens on.
func runCloud(t *testing.T, change func(*config.Config), log *slog.Logger) (Addrs, func()) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen, cfg.MQTT.Listen = "127.0.0.1:0", "127.0.0.1:0"
	if change != nil {
		change(cfg)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Log: log, Ready: func(a Addrs) { ready <- a }})
	}()
	var stopped sync.Once
	stop := func() {
		stopped.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("cloud stopped: %v", err)
				}
			case <-time.After(bound):
				t.Errorf("cloud did not stop within %s", bound)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case a := <-ready:
		return a, stop
	case err := <-done:
		stopped.Do(func() {})
		t.Fatalf("cloud did not start: %v", err)
	case <-time.After(bound):
		t.Fatalf("cloud did not start within %s", bound)
	}
	return Addrs{}, stop
}

// rawRequest writes req as is on a new connection and reads the response.
func rawRequest(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.80q: %v", req, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// waitClosed reads c until the server closes it, and fails if that takes
// longer than bound (the deadline) or data arrives that is not an HTTP
// response (the server only ever answers, it does not send unasked).
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(bound))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the connection was still open after %s", what, bound)
	}
	// io.Copy returns nil at EOF; a reset is a close as well.
}

// TestTimeouts: with a short read timeout, a client that sends headers
// and then trickles its body is cut off, and with a short idle timeout an
// idle keep-alive connection is closed; the bound the test waits is 60
// times the timeout, and the trickled body would take minutes to complete.
//
// Each short timeout is set only on the cloud whose subtest exercises it:
// a request that must succeed (the keep-alive's first, the check that no
// silence was created) is never on a server that gives it 500 ms — the
// read timeout runs from when the server starts reading, and when it
// expires mid-handler the request's context is cancelled.
func TestTimeouts(t *testing.T) {
	t.Run("trickled body", func(t *testing.T) {
		dataDir := t.TempDir()
		addr, stop := startStoppableCloud(t, func(c *config.Config) {
			c.DataDir = dataDir
			c.HTTP.Limits.ReadTimeout = 500 * time.Millisecond
		}, nil)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		const size = 10_000 // at one byte each 20 ms: 200 s
		_, err = io.WriteString(c, "POST /api/v1/silences HTTP/1.1\r\nHost: fieldwatch\r\nContent-Type: application/json\r\n"+
			"Content-Length: 10000\r\n\r\n{")
		if err != nil {
			t.Fatal(err)
		}
		stopTrickle := make(chan struct{})
		trickled := make(chan struct{})
		go func() {
			defer close(trickled)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := 1; i < size; i++ {
				select {
				case <-stopTrickle:
					return
				case <-tick.C:
				}
				if _, err := c.Write([]byte(" ")); err != nil {
					return // cut off
				}
			}
		}()
		waitClosed(t, c, "trickled body")
		close(stopTrickle)
		<-trickled
		// The cloud created no silence from the half-read body: asked of
		// the same data once the cloud is restarted with default timeouts.
		stop()
		addr = startCloud(t, func(c *config.Config) { c.DataDir = dataDir }, nil)
		resp, body := rawRequest(t, addr, "GET /api/v1/silences HTTP/1.1\r\nHost: fieldwatch\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 || strings.TrimSpace(body) != "[]" {
			t.Fatalf("silences after a cut-off POST: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		addr := startCloud(t, func(c *config.Config) { c.HTTP.Limits.IdleTimeout = 500 * time.Millisecond }, nil)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(bound))
		if _, err := io.WriteString(c, "GET /api/v1/stations HTTP/1.1\r\nHost: fieldwatch\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("first request: %d, close %v; want 200 on a connection kept alive", resp.StatusCode, resp.Close)
		}
		waitClosed(t, &bufConn{Conn: c, r: br}, "idle keep-alive")
	})
}

// bufConn reads through a bufio.Reader that already holds part of c.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// TestBodyLimit: a body over http.limits.max_body_bytes is 413, whether it
// announces its length or not, and the limit's exact size is accepted as
// far as the body goes (it is then refused for what it says, 400).
func TestBodyLimit(t *testing.T) {
	addr := startCloud(t, func(c *config.Config) { c.HTTP.Limits.MaxBodyBytes = 1 << 10 }, nil)
	over := `{"comment": "` + strings.Repeat("x", 1<<10) + `"}`
	atLimit := `{"comment": "` + strings.Repeat("x", 1<<10-len(`{"comment": ""}`)) + `"}`
	tests := []struct {
		name, path, body string
		chunked          bool
		code             int
	}{
		{"announced", "/api/v1/silences", over, false, 413},
		{"chunked", "/api/v1/silences", over, true, 413},
		{"ack, announced", "/api/v1/alerts/0123/ack", over, false, 413},
		{"not an API path", "/healthz", over, false, 413},
		{"at the limit", "/api/v1/silences", atLimit, false, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req string
			if tc.chunked {
				req = "POST " + tc.path + " HTTP/1.1\r\nHost: fieldwatch\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n" +
					strconv.FormatInt(int64(len(tc.body)), 16) + "\r\n" + tc.body + "\r\n0\r\n\r\n"
			} else {
				req = "POST " + tc.path + " HTTP/1.1\r\nHost: fieldwatch\r\nConnection: close\r\nContent-Length: " +
					strconv.Itoa(len(tc.body)) + "\r\n\r\n" + tc.body
			}
			resp, body := rawRequest(t, addr, req)
			if resp.StatusCode != tc.code {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.code)
			}
		})
	}
}

// TestSecurityHeaders: every class of response — the page, a script, a
// stylesheet, API JSON, API errors (400, 404, 401 cannot happen on
// loopback defaults), a 404 outside the API, a refused path, a 413,
// /metrics and /healthz — carries the security headers, and the API's
// answers are not cached.
func TestSecurityHeaders(t *testing.T) {
	addr := startCloud(t, nil, nil)
	want := map[string]string{
		"Content-Security-Policy": httpserver.ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	}
	tests := []struct {
		name, req    string
		code         int
		cacheControl string // "" when any
	}{
		{"page", "GET / HTTP/1.1", 200, "no-cache"},
		{"script", "GET /static/js/main.js HTTP/1.1", 200, "no-cache"},
		{"vendored script", "GET /static/vendor/leaflet-1.9.4/leaflet.js HTTP/1.1", 200, "no-cache"},
		{"stylesheet", "GET /static/style.css HTTP/1.1", 200, "no-cache"},
		{"API JSON", "GET /api/v1/stations HTTP/1.1", 200, "no-store"},
		{"API bad parameter", "GET /api/v1/series?station=x HTTP/1.1", 400, "no-store"},
		{"API unknown station", "GET /api/v1/stations/nope HTTP/1.1", 404, "no-store"},
		{"API unknown endpoint", "GET /api/v9 HTTP/1.1", 404, "no-store"},
		{"API bad body", "POST /api/v1/silences HTTP/1.1\r\nContent-Length: 1\r\n\r\n{", 400, "no-store"},
		{"API body too large", "POST /api/v1/silences HTTP/1.1\r\nContent-Length: 99999999", 413, "no-store"},
		{"404 outside the API", "GET /nope HTTP/1.1", 404, ""},
		{"missing static file", "GET /static/nope.js HTTP/1.1", 404, ""},
		{"method not allowed", "DELETE / HTTP/1.1", 405, ""},
		{"refused path", "GET /static/%2e%2e/x HTTP/1.1", 400, ""},
		{"metrics", "GET /metrics HTTP/1.1", 200, "no-store"},
		{"healthz", "GET /healthz HTTP/1.1", 0, "no-store"}, // 200 or 503 by broker state
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line, rest, _ := strings.Cut(tc.req, "\r\n")
			req := line + "\r\nHost: fieldwatch\r\nConnection: close\r\n"
			if rest != "" {
				req += rest + "\r\n"
			}
			if !strings.Contains(rest, "\r\n\r\n") {
				req += "\r\n"
			}
			resp, body := rawRequest(t, addr, req)
			if tc.code != 0 && resp.StatusCode != tc.code {
				t.Fatalf("%d %.200s, want %d", resp.StatusCode, body, tc.code)
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if cc := resp.Header.Get("Cache-Control"); tc.cacheControl != "" && cc != tc.cacheControl {
				t.Errorf("Cache-Control: %q, want %q", cc, tc.cacheControl)
			}
		})
	}
}

// TestHostilePaths: paths that try to leave the static tree or confuse the
// router answer 400 or 404 (431 when longer than the header limit), never
// 500, never a redirect, and never the content of a file outside the
// dashboard's.
func TestHostilePaths(t *testing.T) {
	addr := startCloud(t, nil, nil)
	passwd, _ := os.ReadFile("/etc/passwd")
	outside := [][]byte{[]byte("package app"), []byte("package web"), []byte("root:x:0:0")}
	if len(passwd) > 0 {
		outside = append(outside, passwd[:min(len(passwd), 20)])
	}
	long := strings.Repeat("a", 8000)
	tests := []struct {
		path string
		code []int
	}{
		{"/static/%c0%ae%c0%ae/%c0%ae%c0%ae/web.go", []int{400}}, // overlong UTF-8 "..": was 500
		{"/static/%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afapp.go", []int{400}},
		{"/static/%e0%80%ae%e0%80%ae/web.go", []int{400}}, // three-byte overlong
		{"/static/%ff/app.js", []int{400}},
		{"/static/%2e%2e/web.go", []int{400}},
		{"/static/%2E%2E/%2E%2E/app/app.go", []int{400}},
		{"/static/..%2fweb.go", []int{400}},
		{"/static/..%2f..%2f..%2f..%2fetc%2fpasswd", []int{400}},
		{"/static/../../../../etc/passwd", []int{400}},
		{"/static/.%2e/.%2e/etc/passwd", []int{400}},
		{"/static/./app.js", []int{400}},
		{"/static/%2fetc%2fpasswd", []int{404}},
		{"/static/a%2fb", []int{404}},
		{"/static/..\\..\\web.go", []int{404}},
		{"/static/%5c..%5cweb.go", []int{404}},
		{"/static/app.js%00", []int{400}},
		{"/static/%00../web.go", []int{400}},
		{"/api/v1/stations/%00", []int{400}},
		{"/api/v1/stations/..%2f..%2fmetrics", []int{400}},
		{"/static/%0d%0aSet-Cookie:x", []int{400}},
		{"/static/web.go", []int{404}},
		{"/static/", []int{404}},
		{"/static/" + long, []int{404}},
		{"/api/v1/stations/" + long, []int{400, 404}},
		{"/static/" + strings.Repeat("a", 40<<10), []int{431}}, // over max_header_bytes
	}
	for _, tc := range tests {
		name := tc.path
		if len(name) > 60 {
			name = name[:60] + "…"
		}
		t.Run(name, func(t *testing.T) {
			resp, body := rawRequest(t, addr, "GET "+tc.path+" HTTP/1.1\r\nHost: fieldwatch\r\nConnection: close\r\n\r\n")
			ok := false
			for _, c := range tc.code {
				ok = ok || resp.StatusCode == c
			}
			if !ok {
				t.Errorf("%d (Location %q), want %v", resp.StatusCode, resp.Header.Get("Location"), tc.code)
			}
			for _, o := range outside {
				if bytes.Contains([]byte(body), o) {
					t.Errorf("served content from outside the static tree: %.80q", body)
				}
			}
		})
	}
}

// TestConsoleBasemap: a configured XYZ tile server's origins, and only
// they, are added to the page's img-src, on every response; the page learns
// the basemap from GET /api/v1/console; a PMTiles archive's tiles are
// served by the cloud under the default policy.
func TestConsoleBasemap(t *testing.T) {
	addr := startCloud(t, func(c *config.Config) {
		c.Console.Basemap = config.Basemap{Coordinates: config.GCJ02, XYZ: &config.XYZ{
			URL: "https://t{s}.tiles.example.cn:8443/{z}/{x}/{y}.png", Subdomains: []string{"0", "1"}, Attribution: "© Example GS(2024)1号"}}
	}, nil)
	wantCSP := "default-src 'self'; script-src 'self'; style-src 'self'; " +
		"img-src 'self' https://t0.tiles.example.cn:8443 https://t1.tiles.example.cn:8443; " +
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	for _, p := range []string{"/", "/api/v1/console", "/static/js/map.js"} {
		resp, _ := rawRequest(t, addr, "GET "+p+" HTTP/1.1\r\nHost: fieldwatch\r\nConnection: close\r\n\r\n")
		if got := resp.Header.Get("Content-Security-Policy"); got != wantCSP {
			t.Errorf("%s: CSP %q, want %q", p, got, wantCSP)
		}
	}
	var got api.Console
	consoleJSON := func() {
		t.Helper()
		_, body := rawRequest(t, addr, "GET /api/v1/console HTTP/1.1\r\nHost: fieldwatch\r\nConnection: close\r\n\r\n")
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
	}
	consoleJSON()
	if b := got.Basemap; b.Kind != "xyz" || b.URL != "https://t{s}.tiles.example.cn:8443/{z}/{x}/{y}.png" ||
		b.Coordinates != "gcj02" || b.MaxZoom != 18 || len(b.Subdomains) != 2 || b.Attribution != "© Example GS(2024)1号" {
		t.Errorf("console %+v", b)
	}

	var ar bytes.Buffer
	pmtiles.Write(&ar, map[uint64][]byte{pmtiles.TileID(0, 0, 0): []byte("\x89PNG world")}, pmtiles.WriteOptions{TileType: pmtiles.TilePNG})
	file := filepath.Join(t.TempDir(), "b.pmtiles")
	os.WriteFile(file, ar.Bytes(), 0o644)
	addr = startCloud(t, func(c *config.Config) {
		c.Console.Basemap = config.Basemap{PMTiles: &config.PMTiles{File: file, Attribution: "© Bureau"}}
	}, nil)
	resp, body := rawRequest(t, addr, "GET /basemap/tiles/0/0/0 HTTP/1.1\r\nHost: fieldwatch\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 || body != "\x89PNG world" || resp.Header.Get("Content-Type") != "image/png" ||
		resp.Header.Get("Content-Security-Policy") != httpserver.ContentSecurityPolicy {
		t.Errorf("tile: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	consoleJSON()
	if b := got.Basemap; b.Kind != "pmtiles" || b.URL != basemap.TilePath || b.Coordinates != "wgs84" {
		t.Errorf("console %+v", b)
	}
}
