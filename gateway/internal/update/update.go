// Package update is the gateway's side of signed binary updates
// (docs/fleet.md, Binary updates): it takes the release manifest the
// cloud keeps retained on the gateway's release topic, refuses what is not
// for this gateway, not signed by a trusted key, not newer than the serial
// it took last or has no binary for its target, fetches its binary with
// resume and checks its SHA-256, and — inside the update window — hands
// over to a trial of the new binary (trial.go), which the running gateway
// commits only once the new one is healthy.
//
// The files: the binaries beside the symbolic link the gateway was started
// by (/var/lib/fieldwatch/bin/fieldwatch-gateway under the shipped unit):
// fieldwatch-gateway-<version>-<sha256 prefix> for the release running and
// the one before it, and a .part file while one is fetched; update.json in
// fleet.dir says what was taken, what is pending and how the last release
// ended.
package update

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/internal/atomicfile"
	"github.com/fieldwatch/fieldwatch/internal/newest"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Results, the result label of fieldwatch_gateway_updates_total: refusals,
// then what became of a release taken.
const (
	Malformed      = "malformed"
	OtherGateway   = "other_gateway"
	UnknownKey     = "unknown_key"
	BadSignature   = "bad_signature"
	OldSerial      = "old_serial"
	NoArtifact     = "no_artifact"
	Unsupported    = "unsupported"
	HashMismatch   = "hash_mismatch"
	DownloadFailed = "download_failed"
	Taken          = "taken"       // accepted: being fetched
	Updated        = "updated"     // passed its trial, running
	RolledBack     = "rolled_back" // failed its trial, the previous binary runs
)

// Phases of a pending release.
const (
	Downloading = "downloading"
	Waiting     = "waiting" // fetched and checked, for the update window
	Trying      = "trying"  // the new binary on trial
)

// Host is the running gateway, as the updater sees it.
type Host interface {
	// Health reports the devices of the setup running and whether its
	// uplink is connected.
	Health() (devices []telemetry.DeviceState, connected bool)
	// Ready says whether the gateway may stop for a trial now: inside
	// the update window, no remote config under its health check; else
	// why not.
	Ready(now time.Time) (bool, string)
	// Swap asks the gateway to stop cleanly and hand over to t (Run
	// returns a *SwapError); it does not wait.
	Swap(t *Trial)
}

// Trust is what the local config says about updates.
type Trust struct {
	Gateway string
	Keys    []ed25519.PublicKey
	Dir     string        // fleet.dir: update.json
	Grace   time.Duration // fleet.grace: how long a trial may take
}

// Options start an updater.
type Options struct {
	// Link is the path the gateway was started by: a symbolic link to
	// the binary running, which an update points at the new one. Not a
	// link: updates are refused (Unsupported).
	Link string
	// Target is GOOS/arch as the gateway reports it (linux/arm64).
	Target string
	// Version is the running binary's.
	Version string
	// Trial is the trial file this process was started for
	// ($FIELDWATCH_UPDATE_TRIAL): it reports its health there and takes
	// no release.
	Trial string
	Log   *slog.Logger
	// Downloader fetches artifacts; nil is DefaultDownloader.
	Downloader *Downloader
}

// record is update.json.
type record struct {
	// Serial is the newest release serial taken, Sig its signature: a
	// retained manifest delivered again is recognised.
	Serial  uint64   `json:"serial"`
	Sig     string   `json:"sig,omitempty"`
	Pending *pending `json:"pending,omitempty"`
	// Previous is the version before the running one, kept on disk.
	Previous       string    `json:"previous,omitempty"`
	PreviousBinary string    `json:"previous_binary,omitempty"`
	Error          string    `json:"error,omitempty"`
	ErrorAt        time.Time `json:"error_at,omitzero"`
	// ErrorSerial is the serial of the manifest Error is about.
	ErrorSerial uint64 `json:"error_serial,omitempty"`

	Rollback *telemetry.UpdateRollback `json:"rollback,omitempty"`
}

type pending struct {
	Version  string             `json:"version"`
	Serial   uint64             `json:"serial"`
	Artifact telemetry.Artifact `json:"artifact"`
	Phase    string             `json:"phase"`
	// From is the version running when it was taken.
	From string `json:"from"`
}

// Updater takes release manifests for one gateway.
type Updater struct {
	o       Options
	log     *slog.Logger
	dl      *Downloader
	results *prometheus.CounterVec
	offers  *newest.Box

	downloaded atomic.Int64

	mu      sync.Mutex
	trust   *Trust
	loaded  bool
	rec     record
	refused map[string]uint64
	swapped bool // a trial was handed to the host
}

// New returns an updater; its metrics go on reg.
func New(o Options, reg prometheus.Registerer) *Updater {
	u := &Updater{o: o, log: o.Log.With("component", "update"), dl: o.Downloader, offers: newest.New(),
		refused: map[string]uint64{},
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_gateway_updates_total",
			Help: "Release manifests by result: taken, updated (passed its trial), rolled_back, or refused: malformed, other_gateway, unknown_key, bad_signature, old_serial, no_artifact, unsupported, hash_mismatch, download_failed."},
			[]string{"result"})}
	if u.dl == nil {
		u.dl = DefaultDownloader(u.log)
	}
	u.dl.Progress = func(n int64) { u.downloaded.Store(n) }
	reg.MustRegister(u.results)
	return u
}

// SetTrust points the updater at the local config's trust, at start and on
// each reload.
func (u *Updater) SetTrust(t Trust) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.trust = &t
	if !u.loaded {
		u.loaded = true
		if err := readJSON(filepath.Join(t.Dir, "update.json"), &u.rec); err != nil {
			u.log.Error("update state unreadable; starting afresh", "err", err)
			u.rec = record{}
		}
		u.recoverTrialLocked()
	}
}

// recoverTrialLocked settles a trial the record says was running when
// this process started (not itself on trial); u.mu is held.
func (u *Updater) recoverTrialLocked() {
	p := u.rec.Pending
	switch {
	case u.o.Trial != "" || p == nil || p.Phase != Trying:
	case p.Version == u.o.Version:
		// The link was switched to this binary and the old one stopped
		// before it wrote so: the release passed.
		u.rec.Previous, u.rec.Pending = p.From, nil
		u.save()
	default:
		// This process is the old binary started again: the trial was
		// cut short (power, a kill). It is not tried again.
		u.rollbackLocked(p, "the gateway stopped during the trial of the new binary")
	}
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// save writes update.json; u.mu is held. A failure is logged.
func (u *Updater) save() {
	if u.trust == nil || u.o.Trial != "" {
		return // a binary on trial changes nothing
	}
	if err := writeJSON(filepath.Join(u.trust.Dir, "update.json"), u.rec); err != nil {
		u.log.Error("cannot write update state", "err", err)
	}
}

func writeJSON(path string, v any) error {
	b, _ := json.MarshalIndent(v, "", "  ")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// Offer hands the updater a manifest from the release topic; it never
// blocks (a newer one replaces one not yet handled).
func (u *Updater) Offer(payload []byte) {
	u.offers.Put(payload)
}

// Report is the update part of the gateway's state message.
func (u *Updater) Report() *telemetry.UpdateState {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := &telemetry.UpdateState{Serial: u.rec.Serial, Previous: u.rec.Previous, Error: u.rec.Error,
		ErrorAt: u.rec.ErrorAt, ErrorSerial: u.rec.ErrorSerial, Rollback: u.rec.Rollback}
	if p := u.rec.Pending; p != nil {
		s.Pending, s.Phase, s.Size = p.Version, p.Phase, p.Artifact.Size
		s.Downloaded = p.Artifact.Size
		if p.Phase == Downloading {
			s.Downloaded = u.downloaded.Load()
		}
	}
	return s
}

// Status is the update part of the gateway's /status.
type Status struct {
	telemetry.UpdateState
	Version string            `json:"version"`
	Refused map[string]uint64 `json:"refused,omitempty"`
}

// Status reports the updater's state.
func (u *Updater) Status() Status {
	s := Status{UpdateState: *u.Report(), Version: u.o.Version}
	u.mu.Lock()
	defer u.mu.Unlock()
	s.Refused = maps.Clone(u.refused)
	return s
}

// Run takes offered manifests, fetches what it took and hands it to the
// host inside the window, until ctx is done. A trial process only watches
// its own health.
func (u *Updater) Run(ctx context.Context, host Host) {
	if u.o.Trial != "" {
		watchTrial(ctx, u.o.Trial, host, u.log)
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-u.offers.C():
			u.handle(p)
		case <-tick.C:
		}
		u.advance(ctx, host)
	}
}

// refuse counts and logs a manifest refused, and records the error with
// the manifest's serial (0 when it did not decode).
func (u *Updater) refuse(reason string, serial uint64, err error) {
	u.results.WithLabelValues(reason).Inc()
	u.mu.Lock()
	u.refused[reason]++
	u.noteError(fmt.Errorf("%s: %w", reason, err), serial)
	u.save()
	u.mu.Unlock()
	u.log.Warn("release refused", "reason", reason, "serial", serial, "err", err)
}

// noteError records err about serial as the last error; u.mu is held.
func (u *Updater) noteError(err error, serial uint64) {
	u.rec.Error = telemetry.CutText(err.Error(), telemetry.MaxConfigErrorLen)
	u.rec.ErrorAt = time.Now().UTC()
	u.rec.ErrorSerial = serial
}

// handle takes one manifest.
func (u *Updater) handle(payload []byte) {
	u.mu.Lock()
	t, taken, sig := u.trust, u.rec.Serial, u.rec.Sig
	u.mu.Unlock()
	if t == nil {
		return
	}
	rel, err := telemetry.DecodeRelease(payload)
	if err != nil {
		u.refuse(Malformed, 0, err)
		return
	}
	if !rel.For(t.Gateway) {
		u.refuse(OtherGateway, rel.Serial, fmt.Errorf("release %s (serial %d) is for %v, this is %q", rel.Version, rel.Serial,
			rel.Gateways, t.Gateway))
		return
	}
	if err := rel.Verify(t.Keys); err != nil {
		reason := BadSignature
		if errors.Is(err, telemetry.ErrUnknownKey) {
			reason = UnknownKey
		}
		u.refuse(reason, rel.Serial, fmt.Errorf("release %s (serial %d): %w (key %s)", rel.Version, rel.Serial, err, rel.Key))
		return
	}
	switch {
	case rel.Serial == taken && rel.Sig == sig:
		u.log.Debug("release already taken", "serial", rel.Serial)
		return
	case rel.Serial <= taken:
		u.refuse(OldSerial, rel.Serial, fmt.Errorf("release %s (serial %d) is not newer than serial %d, the newest taken (a replay or a downgrade)",
			rel.Version, rel.Serial, taken))
		return
	}
	a, ok := rel.Artifact(u.o.Target)
	if !ok {
		u.refuse(NoArtifact, rel.Serial, fmt.Errorf("release %s (serial %d) has no binary for %s", rel.Version, rel.Serial, u.o.Target))
		return
	}
	if err := u.checkLink(); err != nil {
		u.refuse(Unsupported, rel.Serial, fmt.Errorf("release %s (serial %d): %w", rel.Version, rel.Serial, err))
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if old := u.rec.Pending; old != nil {
		os.Remove(u.partPath(old.Artifact))
		os.Remove(filepath.Join(u.binDir(), binaryName(old.Version, old.Artifact.SHA256)))
		u.log.Info("a newer release replaces the one pending", "pending", old.Version, "new", rel.Version)
	}
	u.rec.Serial, u.rec.Sig = rel.Serial, rel.Sig
	if rel.Version == u.o.Version {
		u.rec.Pending = nil
		u.log.Info("release already running", "version", rel.Version, "serial", rel.Serial)
		u.save()
		return
	}
	u.rec.Pending = &pending{Version: rel.Version, Serial: rel.Serial, Artifact: a, Phase: Downloading, From: u.o.Version}
	u.rec.Error, u.rec.ErrorAt, u.rec.ErrorSerial = "", time.Time{}, 0
	u.save()
	u.results.WithLabelValues(Taken).Inc()
	u.log.Info("release taken; fetching it", "version", rel.Version, "serial", rel.Serial, "url", a.URL, "size", a.Size)
}

// checkLink says why the binary cannot be swapped, if it cannot.
func (u *Updater) checkLink() error {
	if u.o.Link == "" {
		return errors.New("the gateway does not know the path it was started by")
	}
	fi, err := os.Lstat(u.o.Link)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("the gateway was started as %s, not through a symbolic link to its binary, so it cannot switch binaries (docs/fleet.md, Binary updates)", u.o.Link)
	}
	return nil
}

func (u *Updater) binDir() string { return filepath.Dir(u.o.Link) }

func (u *Updater) partPath(a telemetry.Artifact) string {
	return filepath.Join(u.binDir(), ".fieldwatch-gateway-"+a.SHA256+".part")
}

func binaryName(version, sha string) string { return "fieldwatch-gateway-" + version + "-" + sha[:12] }

// advance moves the pending release on: fetch it, then wait for the host
// to be ready and hand it over.
func (u *Updater) advance(ctx context.Context, host Host) {
	u.mu.Lock()
	p := u.rec.Pending
	swapped := u.swapped
	u.mu.Unlock()
	if p == nil || swapped {
		return
	}
	switch p.Phase {
	case Downloading:
		u.fetch(ctx, p)
	case Waiting:
		ok, why := host.Ready(time.Now())
		if !ok {
			u.log.Debug("release waits", "version", p.Version, "why", why)
			return
		}
		t := u.trial(host, p)
		u.mu.Lock()
		u.swapped = true
		p.Phase = Trying
		u.save()
		u.mu.Unlock()
		u.log.Info("stopping to try the new binary", "version", p.Version, "binary", t.Binary, "grace", t.Grace,
			"devices_to_recover", t.Devices)
		host.Swap(t)
	}
}

// fetch downloads p's binary and puts it beside the link.
func (u *Updater) fetch(ctx context.Context, p *pending) {
	part := u.partPath(p.Artifact)
	err := u.dl.Fetch(ctx, p.Artifact, part)
	if ctx.Err() != nil {
		return // the partial file stays for the next start
	}
	bin := filepath.Join(u.binDir(), binaryName(p.Version, p.Artifact.SHA256))
	if err == nil {
		if err = os.Chmod(part, 0o755); err == nil {
			err = os.Rename(part, bin)
		}
	}
	if err != nil {
		reason := DownloadFailed
		if errors.Is(err, ErrHashMismatch) {
			reason = HashMismatch
		}
		u.mu.Lock()
		if u.rec.Pending == p {
			u.rec.Pending = nil
		}
		u.mu.Unlock()
		os.Remove(part)
		u.refuse(reason, p.Serial, fmt.Errorf("release %s: %w", p.Version, err))
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.rec.Pending == p {
		p.Phase = Waiting
		u.save()
	}
	u.log.Info("release fetched and checked; it waits for the update window", "version", p.Version, "binary", bin)
}

// trial is the hand-over for p: the devices that work now must work in
// the new binary.
func (u *Updater) trial(host Host, p *pending) *Trial {
	devs, _ := host.Health()
	var worked []string
	for _, d := range devs {
		if d.Health == "ok" && !d.Quiet && !d.LastRead.IsZero() {
			worked = append(worked, d.ID)
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return &Trial{Dir: u.trust.Dir, Link: u.o.Link, Binary: filepath.Join(u.binDir(), binaryName(p.Version, p.Artifact.SHA256)),
		Version: p.Version, From: p.From, Serial: p.Serial, Devices: worked, Grace: u.trust.Grace, Log: u.log}
}

// rollbackLocked records p as rolled back and forgets it; u.mu is held.
func (u *Updater) rollbackLocked(p *pending, reason string) {
	now := time.Now().UTC()
	reason = telemetry.CutText(reason, telemetry.MaxConfigErrorLen)
	u.rec.Rollback = &telemetry.UpdateRollback{From: p.Version, To: u.o.Version, Serial: p.Serial, At: now, Reason: reason}
	u.rec.Error, u.rec.ErrorAt, u.rec.ErrorSerial = reason, now, p.Serial
	u.rec.Pending = nil
	os.Remove(filepath.Join(u.binDir(), binaryName(p.Version, p.Artifact.SHA256)))
	u.save()
	u.results.WithLabelValues(RolledBack).Inc()
	u.log.Error("release rolled back", "version", p.Version, "back_to", u.o.Version, "reason", reason)
}
