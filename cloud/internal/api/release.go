package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/cloud/internal/httpserver"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Binary updates (docs/fleet.md, Binary updates): the operator's tool
// uploads each release binary, which the cloud keeps under its SHA-256
// and serves to anyone (GET /releases/<sha256>, with ranges, so a gateway
// resumes a download cut off), and publishes the signed manifest naming
// it on a gateway's release topic. Reading is public: a gateway has no API
// token, and what makes a binary safe to run is its SHA-256 in the
// manifest the operator signed, not where it came from.

// ReleasePublisher publishes a signed release manifest retained on
// gateway gw's release topic (ingest.Ingestor.PublishRelease).
type ReleasePublisher func(ctx context.Context, gw string, manifest []byte) error

// ReleasePath is where the cloud serves a release binary by its SHA-256.
const ReleasePath = "/releases/"

// WithReleases enables binary updates: binaries kept in dir (created if
// need be), manifests published through p.
func (a *API) WithReleases(dir string, p ReleasePublisher) *API {
	a.releases, a.publishRelease = dir, p
	return a
}

func (a *API) registerReleases(mux *http.ServeMux) {
	mux.HandleFunc("PUT /api/v1/stations/{id}/release", a.guard("station_release", apitoken.Operator, a.putRelease))
	mux.HandleFunc("PUT "+httpserver.UploadPrefix+"{sha256}", func(w http.ResponseWriter, r *http.Request) {
		if ar := a.authorized(w, r, "release_upload", apitoken.Operator); ar != nil {
			v, err := a.putArtifact(w, ar)
			a.respond(w, "release_upload", v, err)
		}
	})
	mux.HandleFunc("GET "+ReleasePath+"{sha256}", a.getArtifact)
}

// putRelease takes a signed release manifest (fieldwatch-cloud fleet
// release) and publishes it for its gateway. As for configs, the cloud
// checks its form and address, not its signature.
func (a *API) putRelease(r *http.Request) (any, error) {
	if a.publishRelease == nil {
		return nil, &Error{Status: http.StatusNotImplemented, Msg: "binary updates are not available on this cloud"}
	}
	id := r.PathValue("id")
	if err := telemetry.CheckName("gateway", id); err != nil {
		return nil, badParam("id", "%v", err)
	}
	body, err := readBody(r, telemetry.MaxReleaseBytes)
	if err != nil {
		return nil, err
	}
	rel, err := telemetry.DecodeRelease(body)
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Msg: "body: " + err.Error()}
	}
	if !rel.For(id) {
		return nil, badParam("id", "the release is for %v", rel.Gateways)
	}
	if err := a.publishRelease(r.Context(), id, body); err != nil {
		if errors.Is(err, ErrConfigUnsupported) {
			return nil, &Error{Status: http.StatusNotImplemented, Msg: err.Error()}
		}
		return nil, &Error{Status: http.StatusServiceUnavailable, Msg: "cannot publish: " + err.Error()}
	}
	a.log.Info("release published", "gateway", id, "version", rel.Version, "serial", rel.Serial, "key", rel.Key,
		"by", caller(r).Name)
	return ReleasePublished{Gateway: id, Version: rel.Version, Serial: rel.Serial, Topic: telemetry.ReleaseTopic(id)}, nil
}

// ReleasePublished answers PUT /api/v1/stations/{id}/release.
type ReleasePublished struct {
	Gateway string `json:"gateway"`
	Version string `json:"version"`
	Serial  uint64 `json:"serial"`
	Topic   string `json:"topic"`
}

// ArtifactStored answers PUT /api/v1/releases/{sha256}.
type ArtifactStored struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Path is where the cloud serves it, below its own address.
	Path string `json:"path"`
}

func checkSum(s string) error {
	if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size || hex.EncodeToString(b) != s {
		return errors.New("not 64 lowercase hex digits")
	}
	return nil
}

// idleDeadline extends a connection's deadline by a minute at each read or
// write, so a binary moves over a slow link as long as it moves, whatever
// http.limits' whole-request timeouts say.
type idleDeadline struct {
	rc *http.ResponseController
	r  io.Reader
	w  io.Writer
}

const idleTimeout = time.Minute

func (d idleDeadline) Read(p []byte) (int, error) {
	_ = d.rc.SetReadDeadline(time.Now().Add(idleTimeout))
	return d.r.Read(p)
}

func (d idleDeadline) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(idleTimeout))
	return d.w.Write(p)
}

// putArtifact stores a release binary under its SHA-256, which the path
// names and the body must have.
func (a *API) putArtifact(w http.ResponseWriter, r *http.Request) (any, error) {
	if a.releases == "" {
		return nil, &Error{Status: http.StatusNotImplemented, Msg: "binary updates are not available on this cloud"}
	}
	sum := r.PathValue("sha256")
	if err := checkSum(sum); err != nil {
		return nil, badParam("sha256", "%v", err)
	}
	final := filepath.Join(a.releases, sum)
	if fi, err := os.Stat(final); err == nil {
		return ArtifactStored{SHA256: sum, Size: fi.Size(), Path: ReleasePath + sum}, nil
	}
	if err := os.MkdirAll(a.releases, 0o750); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(a.releases, ".upload-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	body := idleDeadline{rc: http.NewResponseController(w), r: io.LimitReader(r.Body, telemetry.MaxArtifactBytes+1)}
	n, err := io.Copy(io.MultiWriter(tmp, h), body)
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("body: %v", err)}
	}
	if n > telemetry.MaxArtifactBytes {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("body: larger than %d bytes", telemetry.MaxArtifactBytes)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return nil, &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("body: its SHA-256 is %s, not %s", got, sum)}
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return nil, err
	}
	a.log.Info("release binary stored", "sha256", sum, "size", n, "by", caller(r).Name)
	return ArtifactStored{SHA256: sum, Size: n, Path: ReleasePath + sum}, nil
}

// getArtifact serves a stored binary, with ranges; anyone may read it.
func (a *API) getArtifact(w http.ResponseWriter, r *http.Request) {
	sum := r.PathValue("sha256")
	if a.releases == "" || checkSum(sum) != nil {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(filepath.Join(a.releases, sum))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable") // content-addressed
	w.Header().Set("ETag", `"`+sum+`"`)
	http.ServeContent(deadlineWriter{w, idleDeadline{rc: http.NewResponseController(w), w: w}}, r, "", fi.ModTime(), f)
}

// deadlineWriter is w whose body writes extend the write deadline.
type deadlineWriter struct {
	http.ResponseWriter
	d idleDeadline
}

func (w deadlineWriter) Write(p []byte) (int, error) { return w.d.Write(p) }
