package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acked")
	for _, tc := range []struct {
		data string
		perm os.FileMode
	}{{"41\n", 0o640}, {"42\n", 0o600}} {
		if err := Write(path, []byte(tc.data), tc.perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		st, _ := os.Stat(path)
		if err != nil || string(got) != tc.data || st.Mode().Perm() != tc.perm {
			t.Fatalf("file %q (%v) mode %v; want %q %v", got, err, st.Mode().Perm(), tc.data, tc.perm)
		}
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
	if err := Write(filepath.Join(t.TempDir(), "no", "such", "dir"), []byte("x"), 0o600); err == nil {
		t.Fatal("a file in a missing directory was written")
	}
}

// Replacing a file keeps its owner and group: a token file root edits for
// the fieldwatch group stays readable by the service.
func TestWriteKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file another owner")
	}
	path := filepath.Join(t.TempDir(), "api-tokens.yaml")
	if err := os.WriteFile(path, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new"), 0o640); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if s := st.Sys().(*syscall.Stat_t); s.Uid != 1234 || s.Gid != 5678 {
		t.Fatalf("owner %d:%d, want 1234:5678", s.Uid, s.Gid)
	}
}
