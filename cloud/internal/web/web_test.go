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
	}
}
