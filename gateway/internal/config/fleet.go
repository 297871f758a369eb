package config

import (
	"crypto/ed25519"
	"path/filepath"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Fleet is remote configuration: a desired config the cloud publishes,
// signed, on the gateway's config topic (docs/fleet.md). It is read from
// the local file only: the keys a gateway trusts never come over the air.
type Fleet struct {
	// Remote turns remote configuration on; it defaults to true when
	// trusted_keys are given.
	Remote *bool `yaml:"remote"`
	// Commands turns remote commands on (restart, resend, read; docs/fleet.md);
	// it defaults to true when trusted_keys are given.
	Commands *bool `yaml:"commands"`
	// Updates turns signed binary updates on (docs/fleet.md, Binary
	// updates); it defaults to true when trusted_keys are given. The
	// window they are swapped in is updates.window.
	Updates *bool `yaml:"updates"`
	// TrustedKeys are the public keys ("ed25519:…", from
	// fieldwatch-cloud fleet keygen) whose signatures the gateway accepts.
	TrustedKeys []string `yaml:"trusted_keys"`
	// Grace is how long a new remote config has to prove itself: every
	// device that worked before polled successfully and the uplink
	// connected. Failing that it is rolled back.
	Grace time.Duration `yaml:"grace"`
	// Dir holds the remote config in force, the previous one and the
	// fleet state; default: fleet beside buffer.dir.
	Dir string `yaml:"dir"`

	// Keys are TrustedKeys parsed.
	Keys []ed25519.PublicKey `yaml:"-"`
}

// DefaultGrace is fleet.grace's default.
const DefaultGrace = 2 * time.Minute

// RemoteEnabled reports whether the gateway takes remote configuration.
func (c *Config) RemoteEnabled() bool {
	return c.Fleet != nil && c.Fleet.Remote != nil && *c.Fleet.Remote
}

// UpdatesEnabled reports whether the gateway takes binary updates.
func (c *Config) UpdatesEnabled() bool {
	return c.Fleet != nil && c.Fleet.Updates != nil && *c.Fleet.Updates
}

// CommandsEnabled reports whether the gateway takes remote commands.
func (c *Config) CommandsEnabled() bool {
	return c.Fleet != nil && c.Fleet.Commands != nil && *c.Fleet.Commands
}

func (c *Config) validateFleet(r *yamlconf.Report) {
	f := c.Fleet
	if f == nil {
		return
	}
	for i, k := range f.TrustedKeys {
		pub, err := telemetry.ParsePublicKey(k)
		if err != nil {
			r.Errorf(yamlconf.Join("fleet.trusted_keys", i), "%v (the line fieldwatch-cloud fleet keygen prints)", err)
			continue
		}
		f.Keys = append(f.Keys, pub)
	}
	if f.Remote == nil {
		on := len(f.TrustedKeys) > 0
		f.Remote = &on
	}
	if f.Commands == nil {
		on := len(f.TrustedKeys) > 0
		f.Commands = &on
	}
	if f.Updates == nil {
		on := len(f.TrustedKeys) > 0
		f.Updates = &on
	}
	if *f.Updates && len(f.TrustedKeys) == 0 {
		r.Errorf("fleet.updates", "binary updates need at least one fleet.trusted_keys entry")
	}
	if *f.Commands && len(f.TrustedKeys) == 0 {
		r.Errorf("fleet.commands", "remote commands need at least one fleet.trusted_keys entry")
	}
	if *f.Remote && len(f.TrustedKeys) == 0 {
		r.Errorf("fleet.remote", "remote configuration needs at least one fleet.trusted_keys entry")
	}
	if f.Grace == 0 {
		f.Grace = DefaultGrace
	}
	if f.Grace < time.Second || f.Grace > time.Hour {
		r.Errorf("fleet.grace", "%v is not between 1s and 1h", f.Grace)
	}
	if f.Dir == "" {
		f.Dir = filepath.Join(filepath.Dir(filepath.Clean(c.Buffer.Dir)), "fleet")
	} else if filepath.Clean(f.Dir) == filepath.Clean(c.Buffer.Dir) {
		r.Errorf("fleet.dir", "must not be buffer.dir")
	}
}

// LoadRemote parses and validates a config that came from the cloud, with
// the same file:line: field errors as a local file (file names it), and
// refuses what a remote config may not change: the gateway's id, where its
// buffer lives, and the fleet section, which comes from local (the file
// the gateway was started with) and is carried over.
func LoadRemote(local *Config, file string, data []byte) (*Config, error) {
	c, err := Load(file, data)
	if err != nil {
		return nil, err
	}
	var r yamlconf.Report
	if c.Fleet != nil {
		r.Errorf("fleet", "is taken from the local file only (%s): the keys a gateway trusts do not come over the air", local.File)
	}
	if c.Gateway.ID != local.Gateway.ID {
		r.Errorf("gateway.id", "%q is not this gateway (%q)", c.Gateway.ID, local.Gateway.ID)
	}
	if filepath.Clean(c.Buffer.Dir) != filepath.Clean(local.Buffer.Dir) {
		r.Errorf("buffer.dir", "%s is not the local file's %s: a remote config cannot move the buffer", c.Buffer.Dir, local.Buffer.Dir)
	}
	if err := r.Err(file, data); err != nil {
		return nil, err
	}
	c.Fleet = local.Fleet
	return c, nil
}
