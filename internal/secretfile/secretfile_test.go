package secretfile

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestModes: a file only its owner may read is quiet; one its group or
// everyone may read (or write) is Loose, and its warning names the path
// and the mode.
func TestModes(t *testing.T) {
	tests := []struct {
		mode os.FileMode
		who  string // "" when quiet
	}{
		{0o600, ""},
		{0o400, ""},
		{0o640, "group"},
		{0o620, "group"},
		{0o604, "others"},
		{0o644, "group and others"},
		{0o666, "group and others"},
	}
	for _, tc := range tests {
		t.Run(tc.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(path, []byte("s3cret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // not subject to the umask
				t.Fatal(err)
			}
			data, loose, err := Read(path)
			if err != nil || string(data) != "s3cret\n" {
				t.Fatalf("Read: %q, %v", data, err)
			}
			checked, err := Check(path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.who == "" {
				if loose != nil || checked != nil {
					t.Fatalf("mode %04o reported loose: %v / %v", tc.mode, loose, checked)
				}
				return
			}
			if loose == nil || checked == nil || loose.Who != tc.who || checked.Who != tc.who {
				t.Fatalf("mode %04o: %v / %v, want who %q", tc.mode, loose, checked, tc.who)
			}
			var buf bytes.Buffer
			loose.Field = "mqtt.password_file"
			loose.Warn(slog.New(slog.NewTextHandler(&buf, nil)))
			line := buf.String()
			for _, want := range []string{"level=WARN", "path=" + path, "mode=" + fmtOct(tc.mode),
				"field=mqtt.password_file"} {
				if !strings.Contains(line, want) {
					t.Errorf("warning %q lacks %q", line, want)
				}
			}
			if strings.Contains(line, "s3cret") {
				t.Errorf("warning shows the secret: %q", line)
			}
		})
	}
}

func fmtOct(m os.FileMode) string {
	const digits = "01234567"
	p := uint32(m.Perm())
	return string([]byte{'0', digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

// TestOwner: a 0600 file that belongs to another user (not root) is loose:
// that user can read and rewrite it. Needs root to give the file away.
func TestOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a file to another user")
	}
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := Check(path); err != nil || l != nil {
		t.Fatalf("root's own 0600 file: %v, %v", l, err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	l, err := Check(path)
	if err != nil || l == nil || !strings.Contains(l.Who, "uid 65534") {
		t.Fatalf("file of uid 65534: %v, %v", l, err)
	}
}

func TestMissing(t *testing.T) {
	if _, _, err := Read(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("no error for a missing file")
	}
}
