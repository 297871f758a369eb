package backup

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// openDB opens a WAL database as the cloud does.
func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS a (n INTEGER); CREATE TABLE IF NOT EXISTS b (n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	return db
}

// counts reads how many rows a and b hold, changing nothing.
func counts(t *testing.T, path string) (int, int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var a, b int
	if err := db.QueryRow("SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)").Scan(&a, &b); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// TestBackupWhileWriting: a backup taken while a writer commits
// transactions that each add a row to two tables holds whole transactions
// only (VACUUM INTO reads one state); restored, the data directory holds
// the same, and the restore says what it did.
func TestBackupWhileWriting(t *testing.T) {
	data, bak := filepath.Join(t.TempDir(), "data"), filepath.Join(t.TempDir(), "bak")
	if err := os.MkdirAll(data, 0o750); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "cloud.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, filepath.Join(data, "fieldwatch.db"))
	openDB(t, filepath.Join(data, "alerts.db"))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	written := make(chan struct{}, 1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tx, err := db.Begin()
			if err != nil {
				t.Error(err)
				return
			}
			tx.Exec("INSERT INTO a VALUES (?)", i)
			tx.Exec("INSERT INTO b VALUES (?)", i)
			if err := tx.Commit(); err != nil {
				t.Error(err)
				return
			}
			select {
			case written <- struct{}{}:
			default:
			}
		}
	}()
	<-written
	var log bytes.Buffer
	m, err := Backup(context.Background(), Options{DataDir: data, To: bak, Config: []string{cfg, ""}, Log: &log})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 3 || m.Files[0].Name != "data/fieldwatch.db" || m.Files[1].Name != "data/alerts.db" ||
		m.Files[2].Kind != KindConfig || m.Files[2].Origin != cfg {
		t.Fatalf("manifest files %+v", m.Files)
	}
	a, b := counts(t, filepath.Join(bak, "data", "fieldwatch.db"))
	if a == 0 || a != b {
		t.Fatalf("backup holds %d rows in a and %d in b; want the same, at least one", a, b)
	}
	var out bytes.Buffer
	if _, err := Restore(context.Background(), RestoreOptions{From: bak, DataDir: data, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if ra, rb := counts(t, filepath.Join(data, "fieldwatch.db")); ra != a || rb != b {
		t.Fatalf("restored %d, %d rows; want %d, %d", ra, rb, a, b)
	}
	r, err := ReadRestored(data)
	if err != nil || r == nil || !r.BackupCreated.Equal(m.Created) {
		t.Fatalf("restore marker %+v, %v", r, err)
	}
	for _, want := range []string{"checksums and databases good", "moved what", "aside to " + data + ".pre-restore-",
		"restored " + filepath.Join(data, "fieldwatch.db"), "kept " + cfg + ": the same as in the backup", "restore complete"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("restore said\n%s\nwithout %q", out.String(), want)
		}
	}
}

// backupOf makes a small backup of a data directory with one database.
func backupOf(t *testing.T) (data, bak string) {
	t.Helper()
	data, bak = filepath.Join(t.TempDir(), "data"), filepath.Join(t.TempDir(), "bak")
	if err := os.MkdirAll(data, 0o750); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, filepath.Join(data, "fieldwatch.db"))
	if _, err := db.Exec("INSERT INTO a VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(context.Background(), Options{DataDir: data, To: bak}); err != nil {
		t.Fatal(err)
	}
	return data, bak
}

// TestRestoreRefusesLiveCloud: a data directory whose lock is held (a
// cloud runs on it) is not touched.
func TestRestoreRefusesLiveCloud(t *testing.T) {
	data, bak := backupOf(t)
	unlock, err := Lock(data)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	before, _ := os.ReadDir(data)
	_, err = Restore(context.Background(), RestoreOptions{From: bak, DataDir: data})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("restore over a locked data directory: %v; want ErrLocked naming the pid", err)
	}
	after, _ := os.ReadDir(data)
	if len(after) != len(before) {
		t.Fatalf("data directory changed: %d entries, was %d", len(after), len(before))
	}
	if _, err := os.Stat(filepath.Join(data, RestoredName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("restore marker written: %v", err)
	}
}

// TestRestoreChecksBackup: a damaged or tampered backup is refused before
// anything is touched, with what is wrong.
func TestRestoreChecksBackup(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, bak string)
		want   string
	}{
		{"file changed", func(t *testing.T, bak string) {
			f, err := os.OpenFile(filepath.Join(bak, "data", "fieldwatch.db"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("x"))
			f.Close()
		}, "the backup is damaged"},
		{"file missing", func(t *testing.T, bak string) { os.Remove(filepath.Join(bak, "data", "fieldwatch.db")) }, "no such file"},
		{"no manifest", func(t *testing.T, bak string) { os.Remove(filepath.Join(bak, ManifestName)) }, "not a backup"},
		{"manifest of a newer version", func(t *testing.T, bak string) {
			p := filepath.Join(bak, ManifestName)
			data, _ := os.ReadFile(p)
			var m map[string]any
			json.Unmarshal(data, &m)
			m["version"] = 2
			data, _ = json.Marshal(m)
			os.WriteFile(p, data, 0o600)
		}, "version 2 is not 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, bak := backupOf(t)
			tc.damage(t, bak)
			_, err := Restore(context.Background(), RestoreOptions{From: bak, DataDir: data})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore of a damaged backup: %v; want %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(data); len(entries) != 3 { // the database, its -wal and -shm: untouched
				t.Fatalf("data directory touched: %d entries", len(entries))
			}
		})
	}
}

// TestBackupRefusesNonEmptyTarget: a backup never mixes with another.
func TestBackupRefusesNonEmptyTarget(t *testing.T) {
	data, bak := backupOf(t)
	if _, err := Backup(context.Background(), Options{DataDir: data, To: bak}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("backup into a used directory: %v", err)
	}
}

func TestParseManifest(t *testing.T) {
	good := `{"format":"fieldwatch-cloud-backup","version":1,"created":"2026-12-02T15:00:00Z","cloud_version":"v1",
"data_dir":"/var/lib/fieldwatch","files":[{"name":"data/fieldwatch.db","kind":"data","size":4096,
"sha256":"` + strings.Repeat("ab", 32) + `"},{"name":"config/cloud.yaml","kind":"config","origin":"/etc/fieldwatch/cloud.yaml",
"size":10,"sha256":"` + strings.Repeat("cd", 32) + `"}]}`
	if m, err := ParseManifest([]byte(good)); err != nil || len(m.Files) != 2 || !m.Created.Equal(time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)) {
		t.Fatalf("good manifest: %+v, %v", m, err)
	}
	bad := map[string]struct{ from, to, want string }{
		"unknown field":     {`"cloud_version"`, `"extra":1,"cloud_version"`, "unknown field"},
		"format":            {`fieldwatch-cloud-backup`, `something-else`, "format"},
		"escape":            {`data/fieldwatch.db`, `data/../../etc/passwd`, "not a plain file name"},
		"kind mismatch":     {`"name":"data/fieldwatch.db","kind":"data"`, `"name":"data/fieldwatch.db","kind":"config"`, "of its kind"},
		"relative origin":   {`/etc/fieldwatch/cloud.yaml`, `cloud.yaml`, "not an absolute path"},
		"short sha":         {strings.Repeat("ab", 32), "abcd", "64 lowercase hex"},
		"upper sha":         {strings.Repeat("ab", 32), strings.Repeat("AB", 32), "64 lowercase hex"},
		"negative size":     {`"size":4096`, `"size":-1`, "size -1"},
		"twice":             {`config/cloud.yaml`, `data/fieldwatch.db`, ""},
		"no time":           {`"created":"2026-12-02T15:00:00Z",`, ``, "no creation time"},
		"trailing":          {`}]}`, `}]}{}`, "trailing data"},
		"no files":          {`"files":[`, `"files":[],"x":[`, "unknown field"},
		"backslash in name": {`data/fieldwatch.db`, `data/a\\b`, "not a plain file name"},
	}
	for name, tc := range bad {
		in := strings.Replace(good, tc.from, tc.to, 1)
		if _, err := ParseManifest([]byte(in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error with %q", name, err, tc.want)
		}
	}
}

// FuzzParseManifest: any input is refused with an error or parsed into a
// manifest that encodes and parses back the same.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"format":"fieldwatch-cloud-backup","version":1,"created":"2026-12-02T15:00:00Z","cloud_version":"v1",` +
		`"data_dir":"/d","files":[{"name":"data/a.db","kind":"data","size":1,"sha256":"` + strings.Repeat("0f", 32) + `"}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"files":[{"name":"config/../x","kind":"config","origin":"/x"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("a parsed manifest does not encode: %v", err)
		}
		m2, err := ParseManifest(enc)
		if err != nil || len(m2.Files) != len(m.Files) || !m2.Created.Equal(m.Created) {
			t.Fatalf("round trip: %+v, %v", m2, err)
		}
		for _, f := range m.Files {
			if strings.Contains(f.Name, "..") || filepath.IsAbs(f.Name) {
				t.Fatalf("unsafe name %q accepted", f.Name)
			}
		}
	})
}

// TestReadRestored: no marker is a cloud not restored; an empty object
// (written by hand for a new cloud without a backup) is a restored one; a
// damaged marker is an error naming the file.
func TestReadRestored(t *testing.T) {
	dir := t.TempDir()
	if r, err := ReadRestored(dir); r != nil || err != nil {
		t.Fatalf("no marker: %+v, %v", r, err)
	}
	os.WriteFile(filepath.Join(dir, RestoredName), []byte("{}\n"), 0o600)
	if r, err := ReadRestored(dir); r == nil || err != nil {
		t.Fatalf("{}: %+v, %v", r, err)
	}
	os.WriteFile(filepath.Join(dir, RestoredName), []byte(`{"form":"x"}`), 0o600)
	if _, err := ReadRestored(dir); err == nil || !strings.Contains(err.Error(), RestoredName) {
		t.Fatalf("damaged marker: %v", err)
	}
}
