// Package backup takes a consistent snapshot of what a running cloud keeps
// and restores it (fieldwatch-cloud backup, restore; docs/recovery.md).
//
// A backup is a directory: data/ holds a copy of each SQLite database of
// the data directory, made with VACUUM INTO — a read transaction, so the
// copy is one consistent state of that database while the cloud writes
// on (WAL lets a reader in another process run beside the writer) —,
// config/ the configuration files, and manifest.json, written last, names
// every file with its size and SHA-256. Restore checks the manifest and
// every file before it touches anything.
package backup

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// Format and Version identify a backup's manifest.
const (
	Format  = "fieldwatch-cloud-backup"
	Version = 1
)

// ManifestName is the manifest's file name in a backup directory.
const ManifestName = "manifest.json"

// MaxManifestBytes bounds a manifest.
const MaxManifestBytes = 1 << 20

// Kinds of backed-up files.
const (
	KindData   = "data"   // restored into the data directory
	KindConfig = "config" // restored to Origin when nothing is there
)

// Manifest describes a backup.
type Manifest struct {
	Format       string    `json:"format"`
	Version      int       `json:"version"`
	Created      time.Time `json:"created"`
	CloudVersion string    `json:"cloud_version"`
	DataDir      string    `json:"data_dir"` // where the data came from (informational)
	Files        []File    `json:"files"`
}

// File is one backed-up file.
type File struct {
	Name   string `json:"name"`             // path in the backup: data/NAME or config/NAME
	Kind   string `json:"kind"`             // KindData or KindConfig
	Origin string `json:"origin,omitempty"` // a config file's path on the machine it came from
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// ParseManifest decodes and checks a manifest: strict JSON (unknown
// fields refused), this format and version, and every file named once,
// safely (data/NAME or config/NAME, no other separators), with a size and
// a SHA-256.
func ParseManifest(data []byte) (Manifest, error) {
	var m Manifest
	if len(data) > MaxManifestBytes {
		return m, fmt.Errorf("manifest is %d bytes, more than %d", len(data), MaxManifestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	if dec.More() {
		return Manifest{}, errors.New("manifest: trailing data")
	}
	if err := m.check(); err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	return m, nil
}

func (m Manifest) check() error {
	if m.Format != Format {
		return fmt.Errorf("format %q is not %q", m.Format, Format)
	}
	if m.Version != Version {
		return fmt.Errorf("version %d is not %d (made by a newer fieldwatch-cloud?)", m.Version, Version)
	}
	if m.Created.IsZero() {
		return errors.New("no creation time")
	}
	if len(m.Files) == 0 {
		return errors.New("no files")
	}
	seen := map[string]bool{}
	for i, f := range m.Files {
		if err := f.check(); err != nil {
			return fmt.Errorf("files[%d]: %w", i, err)
		}
		if seen[f.Name] {
			return fmt.Errorf("files[%d]: %q named twice", i, f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

func (f File) check() error {
	dir, base, ok := strings.Cut(f.Name, "/")
	switch {
	case !ok || dir != f.Kind || (f.Kind != KindData && f.Kind != KindConfig):
		return fmt.Errorf("name %q is not data/NAME or config/NAME of its kind %q", f.Name, f.Kind)
	case base == "" || base == "." || base == ".." || strings.ContainsAny(base, "/\\\x00") || path.Clean(f.Name) != f.Name:
		return fmt.Errorf("name %q is not a plain file name", f.Name)
	case f.Kind == KindConfig && (f.Origin == "" || !path.IsAbs(f.Origin) || strings.ContainsRune(f.Origin, 0)):
		return fmt.Errorf("%s: origin %q is not an absolute path", f.Name, f.Origin)
	case f.Kind == KindData && f.Origin != "":
		return fmt.Errorf("%s: a data file has no origin", f.Name)
	case f.Size < 0:
		return fmt.Errorf("%s: size %d", f.Name, f.Size)
	}
	if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != 32 || strings.ToLower(f.SHA256) != f.SHA256 {
		return fmt.Errorf("%s: sha256 %q is not 64 lowercase hex digits", f.Name, f.SHA256)
	}
	return nil
}

// Encode writes m as indented JSON.
func (m Manifest) Encode() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
