// Package httpserver is how the cloud serves HTTP: an http.Server whose
// every phase is bounded (Limits), and one middleware (Guard) in front of
// every handler that sets the security headers, caps request bodies and
// refuses paths no page or endpoint has. See docs/decisions.md, "HTTP
// limits, headers and secrets off the command line".
package httpserver

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// Limits bound what one client can hold of the server. A zero field takes
// its default (DefaultLimits).
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, headers and body: a
	// client trickling a body is cut off.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds a request from the end of its headers to the end
	// of its response. It must outlast the API's store timeout (30 s).
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes a keep-alive connection no request arrives on.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes yamlconf.ByteSize `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds a request body; a larger one is answered 413.
	MaxBodyBytes yamlconf.ByteSize `yaml:"max_body_bytes"`
}

// DefaultLimits are the limits of a field that is left zero.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    32 << 10,
		MaxBodyBytes:      64 << 10,
	}
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	set(&l.ReadTimeout, d.ReadTimeout)
	set(&l.WriteTimeout, d.WriteTimeout)
	set(&l.IdleTimeout, d.IdleTimeout)
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	return l
}

// Validate reports negative limits on r under prefix (such as
// "http.limits").
func (l Limits) Validate(r *yamlconf.Report, prefix string) {
	for name, d := range map[string]time.Duration{"read_header_timeout": l.ReadHeaderTimeout,
		"read_timeout": l.ReadTimeout, "write_timeout": l.WriteTimeout, "idle_timeout": l.IdleTimeout} {
		if d < 0 {
			r.Errorf(yamlconf.Join(prefix, name), "must not be negative")
		}
	}
	if l.MaxHeaderBytes < 0 || l.MaxHeaderBytes > 1<<20 {
		r.Errorf(yamlconf.Join(prefix, "max_header_bytes"), "%s is outside 0..1MiB", l.MaxHeaderBytes)
	}
	if l.MaxBodyBytes < 0 || l.MaxBodyBytes > 64<<20 {
		r.Errorf(yamlconf.Join(prefix, "max_body_bytes"), "%s is outside 0..64MiB", l.MaxBodyBytes)
	}
}

// New returns a server for h, wrapped in Guard, with l's limits (zero
// fields at their defaults). Its own errors (a failed TLS handshake, a
// panic) go to log at warn level.
func New(h http.Handler, l Limits, log *slog.Logger) *http.Server {
	return NewWithPolicy(h, l, log, ContentSecurityPolicy)
}

// NewWithPolicy is New with csp as the Content-Security-Policy (Policy
// builds it).
func NewWithPolicy(h http.Handler, l Limits, log *slog.Logger, csp string) *http.Server {
	l = l.WithDefaults()
	return &http.Server{
		Handler:           guard(h, int64(l.MaxBodyBytes), csp),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    int(l.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// ContentSecurityPolicy is the dashboard's policy, sent with every
// response: the page loads its scripts, styles and API data from its own
// origin only, runs no inline script or style, draws its charts and map
// itself (no images from elsewhere: a PMTiles basemap's tiles are served by
// the cloud) and may not be framed.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Policy is ContentSecurityPolicy with images also allowed from exactly
// imgOrigins (scheme://host[:port] each, as config.XYZ.Origins gives them:
// a configured XYZ tile server's), nothing else relaxed.
func Policy(imgOrigins ...string) string {
	if len(imgOrigins) == 0 {
		return ContentSecurityPolicy
	}
	return strings.Replace(ContentSecurityPolicy, "img-src 'self';", "img-src 'self' "+strings.Join(imgOrigins, " ")+";", 1)
}

// Guard wraps every response of h in the security headers, answers 400 to
// a path no route can have (not UTF-8, control characters, a "." or ".."
// segment however encoded) and 413 to a body over maxBody bytes, which it
// also caps while a handler reads it. Cache-Control defaults to no-store;
// a handler may set its own (the dashboard's files do).
func Guard(h http.Handler, maxBody int64) http.Handler {
	return guard(h, maxBody, ContentSecurityPolicy)
}

// UploadPrefix starts the paths of release binaries uploaded to the API
// (PUT /api/v1/releases/<sha256>): their bodies may be MaxUploadBytes, and
// the handler keeps its connection's deadlines moving while bytes move.
const UploadPrefix = "/api/v1/releases/"

// MaxUploadBytes bounds a release binary's upload.
const MaxUploadBytes = 256 << 20

func guard(h http.Handler, defaultMaxBody int64, csp string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		maxBody := defaultMaxBody
		if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, UploadPrefix) {
			maxBody = max(maxBody, MaxUploadBytes)
		}
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		if !goodPath(r.URL.Path) {
			refuse(w, r, http.StatusBadRequest, "bad path")
			return
		}
		if r.ContentLength > maxBody {
			refuse(w, r, http.StatusRequestEntityTooLarge, "body larger than "+yamlconf.ByteSize(maxBody).String())
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		h.ServeHTTP(w, r)
	})
}

// refuse answers an error as JSON under /api/ (as the API's own errors)
// and as text elsewhere.
func refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write([]byte(`{"error":"` + msg + `"}` + "\n"))
		return
	}
	http.Error(w, msg, code)
}

// goodPath reports whether p (decoded) is valid UTF-8 without control
// characters or dot segments.
func goodPath(p string) bool {
	if !utf8.ValidString(p) {
		return false
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// TooLarge reports whether err is a body read cut off by Guard's cap (or
// any http.MaxBytesReader).
func TooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}
