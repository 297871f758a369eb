package backup

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/fieldwatch/fieldwatch/internal/atomicfile"
	"github.com/fieldwatch/fieldwatch/internal/version"
)

// Databases are the data directory's SQLite files in the order a backup
// copies them: the order in which the cloud's writes reach them, read
// backwards. A batch is judged (alerts.db, and notify.db for what the
// judgement notifies) before it is stored (fieldwatch.db), and a
// notification is recorded (notify.db) before the engine marks it
// published (alerts.db). Each copy is taken after the one before it, so it
// is at least as new: the set is a state the cloud could have crashed in,
// from which it recovers by design — a batch stored is judged in it, a
// notification the engine calls published is queued in it (a queued one
// the engine does not know of is recognised when the engine publishes it
// again: same alert, same sequence).
var Databases = []string{"fieldwatch.db", "alerts.db", "notify.db"}

// Options say what to back up and where.
type Options struct {
	DataDir string
	// Config are configuration files to copy (the config file, the token
	// file, …); empty names are skipped.
	Config []string
	To     string // the backup directory: created, must not exist or be empty
	Log    io.Writer
}

// Backup copies the data directory's databases and the config files to
// o.To and writes the manifest last. It runs beside a running cloud.
func Backup(ctx context.Context, o Options) (Manifest, error) {
	m := Manifest{Format: Format, Version: Version, Created: time.Now().UTC(), CloudVersion: version.Version}
	if abs, err := filepath.Abs(o.DataDir); err == nil {
		m.DataDir = abs
	}
	if err := emptyDir(o.To); err != nil {
		return m, err
	}
	for _, d := range []string{KindData, KindConfig} {
		if err := os.MkdirAll(filepath.Join(o.To, d), 0o700); err != nil {
			return m, err
		}
	}
	dbs, err := databases(o.DataDir)
	if err != nil {
		return m, err
	}
	if len(dbs) == 0 {
		return m, fmt.Errorf("no databases in the data directory %s (is it the cloud's data_dir?)", o.DataDir)
	}
	for _, name := range dbs {
		dst := filepath.Join(o.To, KindData, name)
		if err := vacuumInto(ctx, filepath.Join(o.DataDir, name), dst); err != nil {
			return m, fmt.Errorf("%s: %w", name, err)
		}
		f, err := describe(dst, KindData+"/"+name, KindData, "")
		if err != nil {
			return m, err
		}
		m.Files = append(m.Files, f)
		logf(o.Log, "copied %s (%d bytes, one consistent state: VACUUM INTO)\n", name, f.Size)
	}
	for _, src := range o.Config {
		if src == "" {
			continue
		}
		abs, err := filepath.Abs(src)
		if err != nil {
			return m, err
		}
		name := KindConfig + "/" + uniqueName(m.Files, filepath.Base(abs))
		data, err := os.ReadFile(abs)
		if err != nil {
			return m, fmt.Errorf("config file: %w", err)
		}
		dst := filepath.Join(o.To, filepath.FromSlash(name))
		if err := atomicfile.Write(dst, data, 0o600); err != nil {
			return m, err
		}
		f, err := describe(dst, name, KindConfig, abs)
		if err != nil {
			return m, err
		}
		m.Files = append(m.Files, f)
		logf(o.Log, "copied %s\n", abs)
	}
	data, err := m.Encode()
	if err != nil {
		return m, err
	}
	if err := atomicfile.Write(filepath.Join(o.To, ManifestName), data, 0o600); err != nil {
		return m, err
	}
	logf(o.Log, "backup complete: %s (%d files, manifest %s)\n", o.To, len(m.Files), ManifestName)
	return m, nil
}

// databases lists the data directory's SQLite databases: the known ones in
// their order, then any other *.db.
func databases(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	var found, others []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".db") {
			found = append(found, e.Name())
		}
	}
	var out []string
	for _, name := range Databases {
		if slices.Contains(found, name) {
			out = append(out, name)
		}
	}
	for _, name := range found {
		if !slices.Contains(Databases, name) {
			others = append(others, name)
		}
	}
	return append(out, others...), nil
}

// vacuumInto writes a consistent copy of the database src to dst.
func vacuumInto(ctx context.Context, src, dst string) error {
	// Not read-only: a reader of a WAL database needs its shared-memory
	// index, which it may have to create. Nothing is written to src.
	db, err := sql.Open("sqlite", "file:"+src+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("VACUUM INTO: %w", err)
	}
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	return f.Sync()
}

// describe names path's file in the manifest with its size and checksum.
func describe(path, name, kind, origin string) (File, error) {
	sum, size, err := checksum(path)
	if err != nil {
		return File{}, err
	}
	return File{Name: name, Kind: kind, Origin: origin, Size: size, SHA256: sum}, nil
}

func checksum(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// uniqueName is base, or base with a number when files already has it.
func uniqueName(files []File, base string) string {
	name := base
	for i := 2; slices.ContainsFunc(files, func(f File) bool { return f.Name == KindConfig+"/"+name }); i++ {
		name = fmt.Sprintf("%d-%s", i, base)
	}
	return name
}

// emptyDir creates dir, or accepts it when it is empty.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty: a backup goes into a new directory", dir)
	}
	return nil
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format, args...)
	}
}
