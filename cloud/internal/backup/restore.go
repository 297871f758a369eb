package backup

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/atomicfile"
)

// LockName is the lock file a running cloud holds in its data directory.
const LockName = "cloud.lock"

// RestoredName is the marker a restore leaves in the data directory: the
// cloud that starts on it knows its commit records may be behind what the
// gateways were told, and checks their claims (ingest.Options.Restored).
const RestoredName = "restored.json"

// ErrLocked is returned when a cloud is running on the data directory.
var ErrLocked = errors.New("a cloud is running on this data directory")

// Lock takes the data directory's lock (an flock on cloud.lock, released
// by the kernel however the process ends) and writes this process's id in
// it. A running cloud holds it; restore takes it so that no cloud starts
// while it writes. It fails with ErrLocked, naming the holder's pid, when
// another process holds it.
func Lock(dataDir string) (unlock func(), err error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dataDir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 64))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s, pid %s): stop it first", ErrLocked, dataDir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}

// Restored is what RestoredName holds.
type Restored struct {
	From          string    `json:"from"`
	BackupCreated time.Time `json:"backup_created"`
	RestoredAt    time.Time `json:"restored_at"`
}

// ReadRestored reads the data directory's restore marker; nil when the
// data was not restored.
func ReadRestored(dataDir string) (*Restored, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, RestoredName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Restored
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dataDir, RestoredName), err)
	}
	return &r, nil
}

// Verify reads dir's manifest and checks every file it names: present,
// of its size and checksum, and each database whole (SQLite's
// quick_check). Nothing else in dir is looked at.
func Verify(ctx context.Context, dir string) (Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return Manifest{}, fmt.Errorf("not a backup (no readable %s): %w", ManifestName, err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestName), err)
	}
	for _, f := range m.Files {
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		sum, size, err := checksum(path)
		if err != nil {
			return m, fmt.Errorf("%s: %w", f.Name, err)
		}
		if size != f.Size || sum != f.SHA256 {
			return m, fmt.Errorf("%s: %d bytes with SHA-256 %s; the manifest says %d bytes, %s: the backup is damaged",
				f.Name, size, sum, f.Size, f.SHA256)
		}
		if f.Kind == KindData {
			if err := quickCheck(ctx, path); err != nil {
				return m, fmt.Errorf("%s: %w", f.Name, err)
			}
		}
	}
	return m, nil
}

func quickCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
		return fmt.Errorf("not a database: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("database damaged: %s", res)
	}
	return nil
}

// RestoreOptions say what to restore where.
type RestoreOptions struct {
	From    string // the backup directory
	DataDir string
	Out     io.Writer // told what is done, step by step
	Now     func() time.Time
}

// Restore verifies the backup, takes the data directory's lock (refusing
// a live cloud's), moves what the data directory holds aside (never
// deletes it), copies the databases in, writes the restore marker, and
// puts each config file back where it came from when nothing is there. It
// says what it did on o.Out.
func Restore(ctx context.Context, o RestoreOptions) (Manifest, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	m, err := Verify(ctx, o.From)
	if err != nil {
		return m, fmt.Errorf("%w; nothing was changed", err)
	}
	fmt.Fprintf(out, "backup %s: taken %s by fieldwatch-cloud %s, %d files, checksums and databases good\n", o.From,
		m.Created.Format(time.RFC3339), m.CloudVersion, len(m.Files))
	unlock, err := Lock(o.DataDir)
	if err != nil {
		return m, fmt.Errorf("%w; nothing was changed", err)
	}
	defer unlock()
	entries, err := os.ReadDir(o.DataDir)
	if err != nil {
		return m, err
	}
	var aside string
	m, err = restoreInto(o, m, entries, &aside, now, out)
	if err != nil && aside != "" {
		err = fmt.Errorf("%w; the data directory is incomplete, what it held before is in %s", err, aside)
	}
	return m, err
}

// restoreInto moves what the data directory holds (entries) aside, into
// *aside, and copies the backup in.
func restoreInto(o RestoreOptions, m Manifest, entries []os.DirEntry, aside *string, now func() time.Time,
	out io.Writer) (Manifest, error) {
	for _, e := range entries {
		if e.Name() == LockName {
			continue
		}
		if *aside == "" {
			*aside = strings.TrimRight(filepath.Clean(o.DataDir), "/") + ".pre-restore-" + now().UTC().Format("20060102T150405Z")
			if err := os.Mkdir(*aside, 0o700); err != nil {
				return m, fmt.Errorf("cannot make room for what the data directory holds: %w", err)
			}
		}
		if err := os.Rename(filepath.Join(o.DataDir, e.Name()), filepath.Join(*aside, e.Name())); err != nil {
			return m, fmt.Errorf("cannot move %s aside: %w", e.Name(), err)
		}
	}
	if *aside != "" {
		fmt.Fprintf(out, "moved what %s held aside to %s (nothing deleted)\n", o.DataDir, *aside)
	}
	for _, f := range m.Files {
		if f.Kind != KindData {
			continue
		}
		dst := filepath.Join(o.DataDir, strings.TrimPrefix(f.Name, KindData+"/"))
		if err := copyFile(filepath.Join(o.From, filepath.FromSlash(f.Name)), dst, 0o640); err != nil {
			return m, err
		}
		fmt.Fprintf(out, "restored %s (%d bytes)\n", dst, f.Size)
	}
	from, _ := filepath.Abs(o.From)
	marker, _ := json.MarshalIndent(Restored{From: from, BackupCreated: m.Created, RestoredAt: now().UTC()}, "", "  ")
	if err := atomicfile.Write(filepath.Join(o.DataDir, RestoredName), append(marker, '\n'), 0o640); err != nil {
		return m, err
	}
	fmt.Fprintf(out, "wrote %s: the cloud will ask each gateway to send again what it acknowledged after %s\n",
		filepath.Join(o.DataDir, RestoredName), m.Created.Format(time.RFC3339))
	for _, f := range m.Files {
		if f.Kind != KindConfig {
			continue
		}
		src := filepath.Join(o.From, filepath.FromSlash(f.Name))
		switch sum, _, err := checksum(f.Origin); {
		case errors.Is(err, os.ErrNotExist):
			if err := os.MkdirAll(filepath.Dir(f.Origin), 0o750); err != nil {
				return m, err
			}
			if err := copyFile(src, f.Origin, 0o600); err != nil {
				return m, err
			}
			fmt.Fprintf(out, "restored %s\n", f.Origin)
		case err != nil:
			return m, fmt.Errorf("%s: %w", f.Origin, err)
		case sum == f.SHA256:
			fmt.Fprintf(out, "kept %s: the same as in the backup\n", f.Origin)
		default:
			fmt.Fprintf(out, "kept %s: it differs from the backup's copy, %s (compare them)\n", f.Origin, src)
		}
	}
	fmt.Fprintf(out, "restore complete; start the cloud on %s\n", o.DataDir)
	return m, nil
}

// copyFile copies src to dst durably (atomicfile: a temporary file
// renamed).
func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.WriteFrom(dst, in, perm)
}
