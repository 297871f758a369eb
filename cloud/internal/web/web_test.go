package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestServesDashboard(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tests := []struct {
		path, contentType, want string
		code                    int
	}{
		{"/", "text/html", `<script src="/static/app.js">`, 200},
		{"/static/app.js", "javascript", "/api/v1/stations", 200},
		{"/static/style.css", "text/css", ".station", 200},
		{"/static/alerts.js", "javascript", "/api/v1/alerts", 200},
		{"/static/missing.js", "", "", 404},
		{"/other", "", "", 404},
	}
	for _, tc := range tests {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(resp.Header.Get("Content-Type"), tc.contentType) ||
			!strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s = %d %q; want %d %q containing %q", tc.path, resp.StatusCode,
				resp.Header.Get("Content-Type"), tc.code, tc.contentType, tc.want)
		}
		if tc.code == 200 && (resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("ETag") == "") {
			t.Errorf("GET %s: Cache-Control %q, ETag %q; want no-cache and an ETag", tc.path,
				resp.Header.Get("Cache-Control"), resp.Header.Get("ETag"))
		}
	}
	// The ETag makes a reload a 304.
	resp, err := http.Get(srv.URL + "/static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/static/app.js", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidating app.js: %d, want 304", resp.StatusCode)
	}
}

// TestStaticNames: names that reach the static handler and are not one of
// its files are 404, never 500 (http.FileServer over fs.Sub answered 500 to
// a name that is not valid UTF-8), and never a directory's index.html.
// The whole server's answer to hostile paths, with the middleware in front,
// is cloud/internal/app TestHostilePaths.
func TestStaticNames(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux)
	for _, target := range []string{
		"/static/%c0%ae%c0%ae/x", // overlong UTF-8 "..": the old 500
		"/static/%c0%af",         // overlong "/"
		"/static/%ff%fe",         // not UTF-8 at all
		"/static/%00",            // NUL
		"/static/app.js%00.png",  // NUL inside a real name
		"/static/a%2fb",          // encoded slash
		"/static/",               // the directory itself
		"/static/index.html/",    // a file as a directory
		"/static/static/app.js",  // the embed's own prefix
		"/static/App.js",         // case
		"/static/" + strings.Repeat("a", 4000),
	} {
		r := httptest.NewRequest("GET", "http://fieldwatch"+target, nil)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %.60s = %d, want 404", target, w.Code)
		}
	}
}
