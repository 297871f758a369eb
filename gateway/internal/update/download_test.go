package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// flakyServer serves body with Range support, but cuts the connection of
// each of its first cuts responses after about a third of what it asked
// for: a cellular link that drops.
type flakyServer struct {
	body []byte
	mu   sync.Mutex
	cuts int
	// ranges are the Range headers asked for, in order.
	ranges []string
}

func (s *flakyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	cut := s.cuts > 0
	s.cuts--
	s.mu.Unlock()
	if !cut {
		http.ServeContent(w, r, "bin", time.Time{}, bytes.NewReader(s.body))
		return
	}
	// Serve the asked range's first third, then drop the connection.
	rec := httptest.NewRecorder()
	http.ServeContent(rec, r, "bin", time.Time{}, bytes.NewReader(s.body))
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	b := rec.Body.Bytes()
	w.Write(b[:len(b)/3])
	w.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func artifactOf(url string, body []byte) telemetry.Artifact {
	sum := sha256.Sum256(body)
	return telemetry.Artifact{Target: "linux/amd64", URL: url, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}
}

func testDownloader() *Downloader {
	return &Downloader{Client: &http.Client{}, MaxFailures: 4, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Stall: 2 * time.Second, Log: slog.New(slog.DiscardHandler)}
}

func TestFetchResumes(t *testing.T) {
	body := make([]byte, 3<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	srv := &flakyServer{body: body, cuts: 3}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	part := filepath.Join(t.TempDir(), "bin.part")
	if err := testDownloader().Fetch(context.Background(), artifactOf(ts.URL+"/r", body), part); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(part)
	if !bytes.Equal(got, body) {
		t.Fatalf("fetched %d bytes, not the body", len(got))
	}
	// Four requests: the first whole, then three resumed where the file
	// ended, each further on.
	if len(srv.ranges) != 4 || srv.ranges[0] != "" {
		t.Fatalf("requests %q", srv.ranges)
	}
	prev := int64(0)
	for _, r := range srv.ranges[1:] {
		start, ok := rangeStart(strings.Replace(r, "bytes=", "bytes ", 1))
		if !ok || start <= prev {
			t.Fatalf("range %q does not resume after %d (requests %q)", r, prev, srv.ranges)
		}
		prev = start
	}
}

// TestFetchAfterRestart: a partial file from an earlier process is
// continued, not fetched again.
func TestFetchAfterRestart(t *testing.T) {
	body := bytes.Repeat([]byte("fieldwatch"), 100000)
	srv := &flakyServer{body: body}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	part := filepath.Join(t.TempDir(), "bin.part")
	if err := os.WriteFile(part, body[:400000], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := testDownloader().Fetch(context.Background(), artifactOf(ts.URL, body), part); err != nil {
		t.Fatal(err)
	}
	if len(srv.ranges) != 1 || srv.ranges[0] != "bytes=400000-" {
		t.Fatalf("requests %q, want one from byte 400000", srv.ranges)
	}
}

func TestFetchRefuses(t *testing.T) {
	body := []byte("the real binary")
	ts := httptest.NewServer(&flakyServer{body: body})
	defer ts.Close()
	part := filepath.Join(t.TempDir(), "bin.part")
	// Another file of the same size: the hash refuses it, and it is gone.
	a := artifactOf(ts.URL, []byte("a forged binary"))
	if err := testDownloader().Fetch(context.Background(), a, part); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Fetch = %v, want ErrHashMismatch", err)
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Fatalf("the mismatching file is still there: %v", err)
	}
	// A server that never has it: bounded attempts, then an error.
	nf := httptest.NewServer(http.NotFoundHandler())
	defer nf.Close()
	err := testDownloader().Fetch(context.Background(), artifactOf(nf.URL, body), part)
	if err == nil || !strings.Contains(err.Error(), "after 4 attempts") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Fetch from a 404 = %v", err)
	}
	// A server that stalls: the attempt ends, and so does Fetch.
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "15")
		w.Write([]byte("the"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer stall.Close()
	d := testDownloader()
	d.Stall, d.MaxFailures = 100*time.Millisecond, 2
	os.Remove(part)
	if err := d.Fetch(context.Background(), artifactOf(stall.URL, body), part); err == nil ||
		!strings.Contains(err.Error(), "nothing received") {
		t.Fatalf("Fetch from a stalled server = %v", err)
	}
}
