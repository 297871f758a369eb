// Package fleet is the gateway's side of remote configuration
// (docs/fleet.md): it takes the signed desired config the cloud publishes
// on the gateway's config topic, refuses what is not addressed to this
// gateway, not signed by a trusted key, not newer than what it has seen or
// not valid, applies the rest through the gateway's reload path, and rolls
// it back by itself when it fails its health check within fleet.grace.
//
// The files, in fleet.dir: remote-v<N>.yaml for the version running and the
// one before it, and state.json, which says which runs. Each is written
// atomically, and switching between versions is one write of state.json,
// so a power cut leaves one or the other in force, never a mix.
package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/internal/atomicfile"
	"github.com/fieldwatch/fieldwatch/internal/newest"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Host is the running gateway, as the manager sees it.
type Host interface {
	// Apply runs cfg in place of the running config, through the reload
	// path (the buffer is kept); an error leaves the running config.
	Apply(ctx context.Context, cfg *config.Config) error
	// Health reports the devices of the setup running cfg and whether its
	// uplink is connected; running is false while cfg is not (yet) the
	// one running. A nil cfg asks about whatever runs.
	Health(cfg *config.Config) (devices []telemetry.DeviceState, connected, running bool)
	// Changed says the report changed (a config kept, refused or rolled
	// back): the state message should go out soon, not at the next
	// state_interval, for a rollout in the cloud waits for it. It must not
	// block.
	Changed()
}

// Refusal reasons, the result label of fieldwatch_gateway_fleet_configs_total.
const (
	Malformed    = "malformed"
	OtherGateway = "other_gateway"
	UnknownKey   = "unknown_key"
	BadSignature = "bad_signature"
	OldVersion   = "old_version"
	Invalid      = "invalid"
)

// Results that are not refusals.
const (
	Applied    = "applied"     // taken and running, under its health check
	Kept       = "kept"        // passed its health check
	RolledBack = "rolled_back" // failed it, and undone
)

// record is state.json.
type record struct {
	// Version is the remote config in force; 0 is the local file.
	Version uint64 `json:"version"`
	// Highest is the highest version taken (applied, rolled back or found
	// invalid), HighestSum its config's SHA-256: nothing at or below it is
	// applied again, so a replay or downgrade is refused and a retained
	// envelope delivered again is recognised.
	Highest    uint64 `json:"highest"`
	HighestSum string `json:"highest_sum,omitempty"`
	// LocalSum is the SHA-256 of the local file when the remote config was
	// applied: a local file edited since wins until the next push.
	LocalSum string `json:"local_sum,omitempty"`
	// Pending is the version under its health check.
	Pending *pending `json:"pending,omitempty"`
	Error   string   `json:"error,omitempty"`
	// ErrorVersion and ErrorAt go with Error.
	ErrorVersion uint64                    `json:"error_version,omitempty"`
	ErrorAt      time.Time                 `json:"error_at,omitzero"`
	Rollback     *telemetry.ConfigRollback `json:"rollback,omitempty"`
}

type pending struct {
	Version uint64 `json:"version"`
	Prev    uint64 `json:"prev"`
	// Devices are the ones that worked before the change: each must give
	// a reading again within the grace period.
	Devices []string `json:"devices,omitempty"`
	// Starts counts the gateway's starts during the check: a config that
	// makes it crash (or a power cut) restarts it with the check pending.
	Starts int `json:"starts,omitempty"`
}

// MaxStarts is how many restarts a health check survives: at the next
// start the config is rolled back without running it (a config that makes
// the gateway fail at start would otherwise never be undone).
const MaxStarts = 2

// check is a health check in progress.
type check struct {
	cfg       *config.Config
	since     time.Time
	connected bool
}

// Manager takes remote configs for one gateway. Load gives the config to
// run; Run handles what Offer hands it.
type Manager struct {
	localPath string
	log       *slog.Logger
	results   *prometheus.CounterVec
	offers    *newest.Box

	mu      sync.Mutex
	loaded  bool           // Load has run in this process
	local   *config.Config // the local file, as last loaded
	rec     record
	check   *check
	refused map[string]uint64
	waiting []byte // an envelope that came during a health check
}

// New returns a manager for the gateway started with the config file at
// localPath; its metrics go on reg.
func New(localPath string, log *slog.Logger, reg prometheus.Registerer) *Manager {
	m := &Manager{localPath: localPath, log: log.With("component", "fleet"), offers: newest.New(),
		refused: map[string]uint64{},
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_gateway_fleet_configs_total",
			Help: "Remote configs by result: applied, kept (passed the health check), rolled_back, or refused: malformed, other_gateway, unknown_key, bad_signature, old_version, invalid."},
			[]string{"result"})}
	reg.MustRegister(m.results, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldwatch_gateway_fleet_config_version",
		Help: "The remote config version running; 0 is the local file."}, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return float64(m.rec.Version)
	}))
	return m
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (m *Manager) dir() string { return m.local.Fleet.Dir }

func (m *Manager) versionFile(v uint64) string {
	return filepath.Join(m.dir(), fmt.Sprintf("remote-v%d.yaml", v))
}

// Load reads the config to run, at start and on SIGHUP: the local file,
// or, with remote configuration on, the remote config in force — unless
// the local file was edited since that was applied, and then the local
// file wins until the next push (docs/fleet.md, precedence). An error is
// the local file's.
func (m *Manager) Load() (*config.Config, error) {
	data, err := os.ReadFile(m.localPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	local, err := config.Load(m.localPath, data)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.local = local
	if !local.RemoteEnabled() {
		m.check = nil
		return local, nil
	}
	if err := os.MkdirAll(m.dir(), 0o700); err != nil {
		return nil, fmt.Errorf("fleet.dir: %w", err)
	}
	if err := m.readRecord(); err != nil {
		// The record is what refuses downgrades: without it, running
		// the local file is the safe choice.
		m.log.Error("fleet state unreadable; running the local file", "err", err)
		return local, nil
	}
	if m.rec.Version == 0 {
		return local, nil
	}
	if sum(data) != m.rec.LocalSum {
		m.log.Warn("the local config file was edited after remote config was applied; it wins until the next push",
			"file", m.localPath, "remote_version", m.rec.Version)
		m.rec.Version, m.rec.Pending, m.check = 0, nil, nil
		m.saveRecord()
		return local, nil
	}
	cfg, err := m.loadVersion(m.rec.Version)
	if err != nil {
		m.log.Error("remote config in force unreadable; running the local file", "version", m.rec.Version, "err", err)
		m.noteError(m.rec.Version, err)
		m.rec.Version, m.rec.Pending, m.check = 0, nil, nil
		m.saveRecord()
		return local, nil
	}
	if p := m.rec.Pending; p != nil {
		if !m.loaded {
			p.Starts++
			if p.Starts > MaxStarts {
				m.loaded = true
				return m.revert(fmt.Sprintf("the gateway started %d times during the health check", p.Starts)), nil
			}
			m.saveRecord()
		}
		// A restart (or reload) during the health check starts its grace
		// period again.
		m.check = &check{cfg: cfg, since: time.Now()}
	}
	m.loaded = true
	return cfg, nil
}

func (m *Manager) loadVersion(v uint64) (*config.Config, error) {
	path := m.versionFile(v)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return config.LoadRemote(m.local, path, data)
}

func (m *Manager) readRecord() error {
	m.rec = record{}
	b, err := os.ReadFile(filepath.Join(m.dir(), "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, &m.rec)
}

// saveRecord writes state.json; a failure is logged (the gateway keeps
// running; the change may not survive a restart).
func (m *Manager) saveRecord() {
	b, _ := json.MarshalIndent(m.rec, "", "  ")
	if err := atomicfile.Write(filepath.Join(m.dir(), "state.json"), append(b, '\n'), 0o600); err != nil {
		m.log.Error("cannot write fleet state", "err", err)
	}
}

func (m *Manager) noteError(v uint64, err error) {
	m.rec.Error = telemetry.CutText(err.Error(), telemetry.MaxConfigErrorLen)
	m.rec.ErrorVersion, m.rec.ErrorAt = v, time.Now().UTC()
}

// Offer hands the manager an envelope from the config topic; it never
// blocks (a newer envelope replaces one not yet handled).
func (m *Manager) Offer(payload []byte) {
	m.offers.Put(payload)
}

// Report is the config part of the gateway's state message.
func (m *Manager) Report() *telemetry.ConfigState {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &telemetry.ConfigState{Version: m.rec.Version, Source: "local", Error: m.rec.Error,
		ErrorVersion: m.rec.ErrorVersion, ErrorAt: m.rec.ErrorAt, Rollback: m.rec.Rollback}
	if m.rec.Version > 0 {
		s.Source = "remote"
	}
	if m.rec.Pending != nil {
		s.Checking = m.rec.Pending.Version
	}
	return s
}

// Status is the fleet part of the gateway's /status.
type Status struct {
	telemetry.ConfigState
	Remote  bool              `json:"remote"` // remote configuration on
	Refused map[string]uint64 `json:"refused,omitempty"`
}

// Status reports the manager's state.
func (m *Manager) Status() Status {
	s := Status{ConfigState: *m.Report()}
	m.mu.Lock()
	defer m.mu.Unlock()
	s.Remote = m.local != nil && m.local.RemoteEnabled()
	s.Refused = maps.Clone(m.refused)
	return s
}

// Run handles offered envelopes and health checks until ctx is done.
func (m *Manager) Run(ctx context.Context, host Host) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-m.offers.C():
			m.mu.Lock()
			busy := m.check != nil
			if busy {
				m.waiting = p
			}
			m.mu.Unlock()
			if !busy {
				m.handle(ctx, host, p)
			}
		case <-tick.C:
			m.checkHealth(ctx, host)
			m.mu.Lock()
			var p []byte
			if m.check == nil {
				p, m.waiting = m.waiting, nil
			}
			m.mu.Unlock()
			if p != nil {
				m.handle(ctx, host, p)
			}
		}
	}
}

// refuse counts and logs an envelope refused, and records the error.
func (m *Manager) refuse(reason string, version uint64, err error) {
	m.results.WithLabelValues(reason).Inc()
	m.mu.Lock()
	m.refused[reason]++
	m.noteError(version, fmt.Errorf("%s: %w", reason, err))
	if m.local != nil && m.local.RemoteEnabled() {
		m.saveRecord()
	}
	m.mu.Unlock()
	m.log.Warn("remote config refused", "reason", reason, "version", version, "err", err)
}

// handle takes one envelope; a refusal changes the report.
func (m *Manager) handle(ctx context.Context, host Host, payload []byte) {
	m.take(ctx, host, payload)
	host.Changed()
}

// take refuses or applies one envelope.
func (m *Manager) take(ctx context.Context, host Host, payload []byte) {
	m.mu.Lock()
	local := m.local
	highest, highestSum := m.rec.Highest, m.rec.HighestSum
	m.mu.Unlock()
	if local == nil || !local.RemoteEnabled() {
		return
	}
	env, err := telemetry.DecodeConfig(payload)
	if err != nil {
		m.refuse(Malformed, 0, err)
		return
	}
	if env.Gateway != local.Gateway.ID {
		m.refuse(OtherGateway, env.Version, fmt.Errorf("addressed to gateway %q, this is %q", env.Gateway, local.Gateway.ID))
		return
	}
	if err := env.Verify(local.Fleet.Keys); err != nil {
		reason := BadSignature
		if errors.Is(err, telemetry.ErrUnknownKey) {
			reason = UnknownKey
		}
		m.refuse(reason, env.Version, fmt.Errorf("%w (key %s)", err, env.Key))
		return
	}
	sum := telemetry.ConfigSum(env.Config)
	switch {
	case env.Version == highest && sum == highestSum:
		// The retained envelope again, on a new connection: seen.
		m.log.Debug("remote config already taken", "version", env.Version)
		return
	case env.Version <= highest:
		m.refuse(OldVersion, env.Version, fmt.Errorf("version %d is not newer than %d, the newest taken (a replay or a downgrade)",
			env.Version, highest))
		return
	}
	m.mu.Lock()
	m.rec.Highest, m.rec.HighestSum = env.Version, sum
	m.mu.Unlock()
	name := fmt.Sprintf("remote config v%d", env.Version)
	cfg, err := config.LoadRemote(local, name, []byte(env.Config))
	if err != nil {
		m.refuse(Invalid, env.Version, err)
		return
	}
	m.apply(ctx, host, env, cfg)
}

// apply writes the new version's file, records it as pending and runs it.
func (m *Manager) apply(ctx context.Context, host Host, env telemetry.ConfigEnvelope, cfg *config.Config) {
	devs, _, _ := host.Health(nil)
	var worked []string
	for _, d := range devs {
		if d.Health == "ok" && !d.Quiet && !d.LastRead.IsZero() {
			worked = append(worked, d.ID)
		}
	}
	localData, err := os.ReadFile(m.localPath)
	if err != nil {
		m.refuse(Invalid, env.Version, fmt.Errorf("cannot read the local file: %w", err))
		return
	}
	m.mu.Lock()
	path := m.versionFile(env.Version)
	if err := atomicfile.Write(path, []byte(env.Config), 0o600); err != nil {
		m.mu.Unlock()
		m.refuse(Invalid, env.Version, fmt.Errorf("cannot write %s: %w", path, err))
		return
	}
	cfg.File = path
	prev := m.rec.Version
	m.rec.Version, m.rec.LocalSum = env.Version, sum(localData)
	m.rec.Pending = &pending{Version: env.Version, Prev: prev, Devices: worked}
	m.saveRecord()
	m.removeOld(env.Version, prev)
	since := time.Now()
	m.check = &check{cfg: cfg, since: since}
	m.mu.Unlock()
	m.results.WithLabelValues(Applied).Inc()
	m.log.Info("applying remote config", "version", env.Version, "previous", prev, "issued", env.Issued,
		"grace", cfg.Fleet.Grace, "devices_to_recover", worked)
	if err := host.Apply(ctx, cfg); err != nil {
		m.rollback(ctx, host, fmt.Sprintf("cannot apply: %v", err))
	}
}

// removeOld deletes version files other than keep's.
func (m *Manager) removeOld(keep ...uint64) {
	old, _ := filepath.Glob(filepath.Join(m.dir(), "remote-v*.yaml"))
	for _, f := range old {
		if !slices.ContainsFunc(keep, func(v uint64) bool { return m.versionFile(v) == f }) {
			os.Remove(f)
		}
	}
}

// checkHealth looks at the pending config: kept once its uplink connected
// and every device that worked before gave a reading; rolled back when
// the grace period passes first.
func (m *Manager) checkHealth(ctx context.Context, host Host) {
	m.mu.Lock()
	c, p := m.check, m.rec.Pending
	m.mu.Unlock()
	if c == nil || p == nil {
		return
	}
	devs, connected, running := host.Health(c.cfg)
	if running && connected {
		c.connected = true
	}
	var missing []string
	if running {
		byID := map[string]telemetry.DeviceState{}
		for _, d := range devs {
			byID[d.ID] = d
		}
		for _, id := range p.Devices {
			d, ok := byID[id]
			if !ok {
				continue // not in the new config
			}
			if !d.LastRead.After(c.since) {
				missing = append(missing, describe(d))
			}
		}
	}
	if running && c.connected && len(missing) == 0 {
		m.mu.Lock()
		m.rec.Pending, m.check = nil, nil
		m.rec.Error, m.rec.ErrorVersion, m.rec.ErrorAt = "", 0, time.Time{}
		m.saveRecord()
		m.mu.Unlock()
		m.results.WithLabelValues(Kept).Inc()
		m.log.Info("remote config passed its health check", "version", p.Version)
		host.Changed()
		return
	}
	grace := c.cfg.Fleet.Grace
	if time.Since(c.since) < grace {
		return
	}
	var why []string
	if !running {
		why = append(why, "it never ran")
	} else if !c.connected {
		why = append(why, "no uplink connection")
	}
	if len(missing) > 0 {
		why = append(why, "no reading from "+strings.Join(missing, ", "))
	}
	m.rollback(ctx, host, fmt.Sprintf("health check failed within %v: %s", grace, strings.Join(why, "; ")))
}

func describe(d telemetry.DeviceState) string {
	if d.Error != "" {
		return fmt.Sprintf("%s (%s)", d.ID, d.Error)
	}
	return d.ID
}

// rollback puts the previous config back in force and runs it.
func (m *Manager) rollback(ctx context.Context, host Host, reason string) {
	m.mu.Lock()
	if m.rec.Pending == nil {
		m.mu.Unlock()
		return
	}
	p := *m.rec.Pending
	prev := m.revert(reason)
	m.mu.Unlock()
	if err := host.Apply(ctx, prev); err != nil {
		m.log.Error("cannot run the previous config again", "version", p.Prev, "err", err)
	}
	host.Changed()
}

// revert puts the version before the pending one (or the local file) back
// in force, records the rollback and returns that config. m.mu is held.
func (m *Manager) revert(reason string) *config.Config {
	p := m.rec.Pending
	var prev *config.Config
	var err error
	if p.Prev > 0 {
		prev, err = m.loadVersion(p.Prev)
	}
	if p.Prev == 0 || err != nil {
		if err != nil {
			m.log.Error("previous remote config unreadable; rolling back to the local file", "version", p.Prev, "err", err)
		}
		prev, p.Prev = m.local, 0
	}
	now := time.Now().UTC()
	reason = telemetry.CutText(reason, telemetry.MaxConfigErrorLen)
	m.rec.Version, m.rec.Pending, m.check = p.Prev, nil, nil
	m.rec.Rollback = &telemetry.ConfigRollback{From: p.Version, To: p.Prev, At: now, Reason: reason}
	m.rec.Error, m.rec.ErrorVersion, m.rec.ErrorAt = reason, p.Version, now
	m.saveRecord()
	m.results.WithLabelValues(RolledBack).Inc()
	m.log.Error("remote config rolled back", "version", p.Version, "back_to", p.Prev, "reason", reason)
	return prev
}
