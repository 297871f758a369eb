// Package atomicfile replaces small files so that a crash leaves either the
// old content or the new, never a mix: write a temporary file beside it,
// fsync, rename over it, fsync the directory.
package atomicfile

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Write replaces the file at path with data, with permissions perm and,
// when it exists, its owner and group (a file an administrator edits as
// root for a service's group stays readable by that service). The
// temporary file is path + ".tmp".
func Write(path string, data []byte, perm fs.FileMode) error {
	return WriteFrom(path, bytes.NewReader(data), perm)
}

// WriteFrom is Write with the content read from r, for files too large to
// hold in memory (a database restored from a backup).
func WriteFrom(path string, r io.Reader, perm fs.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if err := keepOwner(f, path); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil { // OpenFile's perm is masked by the umask
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// keepOwner gives f the owner and group of the file at path, if it exists
// and they differ.
func keepOwner(f *os.File, path string) error {
	old, err := os.Stat(path)
	if err != nil {
		return nil // a new file
	}
	now, err := f.Stat()
	if err != nil {
		return err
	}
	o, ok1 := old.Sys().(*syscall.Stat_t)
	n, ok2 := now.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 || (o.Uid == n.Uid && o.Gid == n.Gid) {
		return nil
	}
	if err := f.Chown(int(o.Uid), int(o.Gid)); err != nil {
		return fmt.Errorf("cannot keep the owner of %s: %w", path, err)
	}
	return nil
}

// SyncDir makes the entries of dir (files created, renamed or removed in
// it) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
