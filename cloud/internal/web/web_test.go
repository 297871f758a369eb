package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
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
		{"/", "text/html", `<script type="module" src="/static/js/main.js">`, 200},
		{"/static/js/main.js", "javascript", "/api/v1/stations", 200},
		{"/static/js/alerts.js", "javascript", "/api/v1/alerts", 200},
		{"/static/js/chart.js", "javascript", "/api/v1/series", 200},
		{"/static/js/stats.js", "javascript", "/api/v1/stats", 200},
		{"/static/js/i18n.js", "javascript", "溶解氧", 200},
		{"/static/style.css", "text/css", ".station", 200},
		{"/static/app.js", "", "", 404}, // the old single script, split into modules
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
	resp, err := http.Get(srv.URL + "/static/js/main.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/static/js/main.js", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidating main.js: %d, want 304", resp.StatusCode)
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
		"/static/%c0%ae%c0%ae/x",   // overlong UTF-8 "..": the old 500
		"/static/%c0%af",           // overlong "/"
		"/static/%ff%fe",           // not UTF-8 at all
		"/static/%00",              // NUL
		"/static/style.css%00.png", // NUL inside a real name
		"/static/a%2fb",            // encoded slash
		"/static/",                 // the directory itself
		"/static/index.html/",      // a file as a directory
		"/static/static/style.css", // the embed's own prefix
		"/static/Style.css",        // case
		"/static/vendor/",          // a directory of files
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

// TestServesPageFiles: every file the page names — its modules' imports,
// the vendored scripts and styles, the images the styles name, the
// basemap — is one of the served files, with the right type.
func TestServesPageFiles(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux)
	get := func(path string) (int, string, string) {
		r := httptest.NewRequest("GET", "http://fieldwatch"+path, nil)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code, w.Header().Get("Content-Type"), w.Body.String()
	}
	refs := regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`)
	imports := regexp.MustCompile(`from "\./([\w.-]+\.js)"`)
	urls := regexp.MustCompile(`url\(([\w./-]+\.png)\)`)
	seen := map[string]bool{}
	var visit func(path string)
	visit = func(path string) {
		if seen[path] {
			return
		}
		seen[path] = true
		code, ctype, body := get(path)
		if code != 200 {
			t.Errorf("GET %s = %d, want 200", path, code)
			return
		}
		want := map[string]string{".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json", ".html": "text/html", ".svg": "image/svg+xml"}
		for ext, ct := range want {
			if strings.HasSuffix(path, ext) && !strings.Contains(ctype, ct) {
				t.Errorf("GET %s: Content-Type %q, want %s", path, ctype, ct)
			}
		}
		dir := path[:strings.LastIndex(path, "/")+1]
		for _, m := range refs.FindAllStringSubmatch(body, -1) {
			visit(m[1])
		}
		if strings.HasPrefix(path, "/static/js/") {
			for _, m := range imports.FindAllStringSubmatch(body, -1) {
				visit(dir + m[1])
			}
			for _, m := range regexp.MustCompile(`"(/static/vendor/[^"]+)"`).FindAllStringSubmatch(body, -1) {
				visit(m[1])
			}
		}
		if strings.HasSuffix(path, ".css") {
			for _, m := range urls.FindAllStringSubmatch(body, -1) {
				visit(dir + m[1])
			}
		}
	}
	visit("/")
	for _, p := range []string{"/static/js/map.js", "/static/js/chart.js", "/static/vendor/world-atlas-2.0.2/land-50m.json",
		"/static/vendor/leaflet-1.9.4/images/layers.png", "/static/vendor/uplot-1.6.32/uPlot.iife.min.js",
		"/static/favicon.svg"} {
		if !seen[p] {
			t.Errorf("%s is not reached from the page", p)
		}
	}
	// Every vendored library carries its licence.
	for _, lib := range []string{"leaflet-1.9.4", "uplot-1.6.32", "topojson-client-3.1.0", "world-atlas-2.0.2"} {
		if code, _, _ := get("/static/vendor/" + lib + "/LICENSE"); code != 200 {
			t.Errorf("%s: no LICENSE served (%d)", lib, code)
		}
	}
}
