package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// ErrHashMismatch: the whole file was fetched and is not the artifact the
// manifest names (size or SHA-256).
var ErrHashMismatch = errors.New("the binary fetched does not match the manifest's SHA-256")

// Downloader fetches an artifact into a partial file that survives a
// dropped connection and a restart of the process: each attempt asks for
// the bytes after those already on disk (an HTTP Range request), so a
// cellular link that drops every few megabytes still gets there.
type Downloader struct {
	Client *http.Client
	// MaxFailures is how many attempts in a row may fail without a byte
	// of progress before Fetch gives up; an attempt that made progress
	// resets the count.
	MaxFailures int
	// Backoff is the wait after the first failure, doubled after each
	// one in a row up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// Stall ends an attempt that has received nothing for that long.
	Stall time.Duration
	Log   *slog.Logger
	// Progress, if set, hears the bytes on disk after each write.
	Progress func(n int64)
}

// DefaultDownloader is the gateway's: a minute without a byte ends an
// attempt, 12 attempts in a row without progress (about 40 minutes of
// backoff) give up.
func DefaultDownloader(log *slog.Logger) *Downloader {
	return &Downloader{Client: &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
		TLSHandshakeTimeout: 30 * time.Second, ResponseHeaderTimeout: time.Minute}},
		MaxFailures: 12, Backoff: 5 * time.Second, MaxBackoff: 10 * time.Minute, Stall: time.Minute, Log: log}
}

// Fetch fetches a into part (created or continued) until it holds the
// artifact's size, then checks its SHA-256: ErrHashMismatch (and part
// removed, so the next try starts over) when it is not a's.
func (d *Downloader) Fetch(ctx context.Context, a telemetry.Artifact, part string) error {
	failures := 0
	wait := d.Backoff
	for {
		progressed, err := d.attempt(ctx, a, part)
		if err == nil {
			return d.verify(a, part)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if progressed {
			failures, wait = 0, d.Backoff
		}
		failures++
		if failures >= d.MaxFailures {
			return fmt.Errorf("cannot fetch %s after %d attempts without progress: %w", a.URL, failures, err)
		}
		d.Log.Warn("release download interrupted; resuming after a pause", "url", a.URL, "err", err, "wait", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, d.MaxBackoff)
	}
}

// verify checks part's size and SHA-256 against a.
func (d *Downloader) verify(a telemetry.Artifact, part string) error {
	f, err := os.Open(part)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != a.Size || got != a.SHA256 {
		os.Remove(part)
		return fmt.Errorf("%w: %d bytes with SHA-256 %s, want %d bytes with %s", ErrHashMismatch, n, got, a.Size, a.SHA256)
	}
	return nil
}

// attempt fetches what part lacks in one request, and reports whether the
// file ends further on than before (a server that sends everything again
// each time and drops midway makes no progress).
func (d *Downloader) attempt(ctx context.Context, a telemetry.Artifact, part string) (bool, error) {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, err
	}
	if have > a.Size {
		have = 0 // not this artifact's beginning
	}
	before := have
	if have == a.Size {
		return false, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
	if err != nil {
		return false, err
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := d.Client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
			return false, fmt.Errorf("asked for bytes from %d, the server answered %q", have, resp.Header.Get("Content-Range"))
		}
	case resp.StatusCode == http.StatusOK:
		have = 0 // the server sends it all again
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		// What we have is not a beginning of it: start over.
		return false, errors.Join(errors.New("the server cannot resume from there; starting over"), f.Truncate(0))
	default:
		return false, fmt.Errorf("GET %s: %s", a.URL, resp.Status)
	}
	if err := f.Truncate(have); err != nil {
		return false, err
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return false, err
	}
	// A stalled link ends the attempt: a read that waits forever would
	// never let the next attempt resume.
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	stalled := make(chan struct{})
	go func() {
		t := time.NewTicker(min(d.Stall/4+time.Millisecond, time.Second))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if time.Since(time.Unix(0, last.Load())) > d.Stall {
					close(stalled)
					cancel()
					return
				}
			}
		}
	}()
	w := &progressWriter{f: f, n: have, last: &last, progress: d.Progress}
	added, err := io.Copy(w, io.LimitReader(resp.Body, a.Size-have))
	if serr := f.Sync(); err == nil {
		err = serr
	}
	select {
	case <-stalled:
		err = fmt.Errorf("nothing received for %v", d.Stall)
	default:
	}
	if err == nil && have+added < a.Size {
		err = io.ErrUnexpectedEOF
	}
	return have+added > before, err
}

// rangeStart reads the first byte of "bytes START-END/SIZE".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

type progressWriter struct {
	f        *os.File
	n        int64
	last     *atomic.Int64
	progress func(int64)
}

func (w *progressWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.n += int64(n)
	w.last.Store(time.Now().UnixNano())
	if w.progress != nil {
		w.progress(w.n)
	}
	return n, err
}
