// Package web serves the cloud's dashboard: a static page (embedded in the
// binary, no external resources, works without internet) that reads the
// JSON API.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed static
var static embed.FS

// file is one embedded file, read once.
type file struct {
	data []byte
	etag string
}

// files are the dashboard's files by name ("app.js"), read at start.
var files = func() map[string]file {
	sub, _ := fs.Sub(static, "static") // the directory is embedded above
	out := map[string]file{}
	fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[name] = file{data: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return out
}()

// Register adds the dashboard's routes to mux: / and /static/.
//
// A file is looked up by its exact name among the embedded ones, never
// opened by a path taken from the request: http.FileServer over fs.Sub
// answered 500 to a name fs.ValidPath refuses (invalid UTF-8 such as
// /static/%c0%ae%c0%ae/, which fs.Sub reports as fs.ErrInvalid and the file
// server maps to 500), served directories' index.html, and redirected.
// Anything that is not one of the files is 404.
func Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /static/{name...}", func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, r.PathValue("name"))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, "index.html")
	})
}

// serve answers with the embedded file name, or 404.
func serve(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	// Revalidate each time (the ETag makes that a 304): a new binary's page
	// and scripts are never mixed with an old one's.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", f.etag)
	http.ServeContent(w, r, path.Base(name), time.Time{}, bytes.NewReader(f.data))
}
