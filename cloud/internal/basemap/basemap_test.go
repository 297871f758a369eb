package basemap

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldwatch/fieldwatch/internal/pmtiles"
)

func TestHandler(t *testing.T) {
	tiles := map[uint64][]byte{pmtiles.TileID(0, 0, 0): []byte("world"), pmtiles.TileID(1, 1, 0): []byte("north-east")}
	var b bytes.Buffer
	if err := pmtiles.Write(&b, tiles, pmtiles.WriteOptions{TileType: pmtiles.TilePNG, MaxZoom: 1}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "t.pmtiles")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := pmtiles.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mux := http.NewServeMux()
	mux.Handle("GET "+TilePath, Handler(a, slog.New(slog.DiscardHandler)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(p string, hdr ...string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL+p, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/basemap/tiles/1/1/0")
	if resp.StatusCode != 200 || body != "north-east" || resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("ETag") == "" {
		t.Errorf("tile: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if r, _ := get("/basemap/tiles/1/1/0", "If-None-Match", resp.Header.Get("ETag")); r.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d", r.StatusCode)
	}
	if r, b := get("/basemap/tiles/1/1/0", "Range", "bytes=0-4"); r.StatusCode != http.StatusPartialContent || b != "north" {
		t.Errorf("range: %d %q", r.StatusCode, b)
	}
	if r, _ := get("/basemap/tiles/1/0/0"); r.StatusCode != http.StatusNoContent {
		t.Errorf("absent tile: %d, want 204", r.StatusCode)
	}
	for _, p := range []string{"/basemap/tiles/1/2/0", "/basemap/tiles/31/0/0", "/basemap/tiles/a/0/0", "/basemap/tiles/1/0/-1"} {
		if r, _ := get(p); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, r.StatusCode)
		}
	}
}
