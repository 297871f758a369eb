// Package web serves the cloud's dashboard: a static page (embedded in the
// binary, no external resources, works without internet) that reads the
// JSON API.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Register adds the dashboard's routes to mux: / and /static/.
func Register(mux *http.ServeMux) {
	sub, _ := fs.Sub(static, "static") // the directory is embedded above
	files := http.FileServerFS(sub)
	mux.Handle("GET /static/", http.StripPrefix("/static/", files))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, sub, "index.html")
	})
}
