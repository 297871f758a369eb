package passwd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestMosquittoPasswdFile checks passwords against a file written by
// Debian's mosquitto_passwd, in both its formats.
func TestMosquittoPasswdFile(t *testing.T) {
	users := []struct{ user, password, algo string }{
		{"farm-north", "s3cret", ""},                          // $7$, the default
		{"buoy-qingdao", "with spaces: and colons", ""},       // what a shell would split
		{"fieldwatch-cloud", "長い パスワード ✓", ""},                // UTF-8
		{"old-gateway", "from mosquitto 1.6", "sha512"},       // $6$
		{"empty-ish", " ", ""},                                // a single space
		{"x", strings.Repeat("long password ", 40), "sha512"}, // beyond one hash block
	}
	path := filepath.Join(t.TempDir(), "passwd")
	for _, u := range users {
		testenv.MosquittoPasswd(t, path, u.user, u.password, u.algo)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "farm-north:$7$") || !strings.Contains(string(data), "old-gateway:$6$") {
		t.Fatalf("mosquitto_passwd did not write both formats:\n%s", data)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != len(users) {
		t.Fatalf("%d users, want %d", f.Len(), len(users))
	}
	for _, u := range users {
		if err := f.Check(u.user, u.password); err != nil {
			t.Errorf("%s with the right password: %v", u.user, err)
		}
		if err := f.Check(u.user, u.password+"x"); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("%s with a wrong password: %v, want ErrWrongPassword", u.user, err)
		}
		if err := f.Check(u.user, ""); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("%s with no password: %v, want ErrWrongPassword", u.user, err)
		}
	}
	if err := f.Check("farm-south", "s3cret"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := f.Check("buoy-qingdao", "s3cret"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("another user's password: %v", err)
	}
}

const (
	salt = "QTWd8g0bH+rq0iA1"
	hash = "8fhNd2ZNTBqPegvcmcVbtyrLwFSBwXLs/2ujEJIF+0KEHSGo/+/VPOGY/7uUc8JInKASQpB4Dhhwz9UglTvE2g=="
	good = "gw-a:$7$101$" + salt + "$" + hash // mosquitto_passwd 2.0.11, password "secretA"
)

func TestParse(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"good", good + "\n", ""},
		{"comments, blanks, CRLF, spaces", "# users\n\n  \n" + " gw-a : $7$101$" + salt + "$" + hash + " \r\n", ""},
		{"no colon", "gw-a\n", "1: no ':'"},
		{"empty user", ":$7$101$" + salt + "$" + hash, "1: empty user name"},
		{"plain text", "gw-a:secretA", "not hashed"},
		{"duplicate", good + "\n" + good, `2: user "gw-a" is already on line 1`},
		{"unknown kind", "gw-a:$5$" + salt + "$" + hash, "neither $7$"},
		{"too few fields", "gw-a:$7$" + salt + "$" + hash, "has 4 fields separated by $, not 3"},
		{"zero iterations", "gw-a:$7$0$" + salt + "$" + hash, `iterations "0"`},
		{"huge iterations", "gw-a:$7$99999999$" + salt + "$" + hash, "iterations"},
		{"short salt", "gw-a:$7$101$QTWd8g0b$" + hash, "salt is not 12 bytes"},
		{"bad base64", "gw-a:$7$101$" + salt + "$" + hash[:80] + "!!", "hash is not 64 bytes"},
		{"colon in hash", good + ":x", "hash is not 64 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.file))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if err := f.Check("gw-a", "secretA"); err != nil {
					t.Fatalf("right password: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(path, []byte(good+"\nbroken\n"), 0o600)
	_, err := Load(path)
	if err == nil || err.Error() != path+":2: no ':' between user and password hash" {
		t.Fatalf("error %v", err)
	}
	if _, err := Load(path + ".missing"); err == nil {
		t.Fatal("a missing file loaded")
	}
}

// FuzzParse: no input panics Parse; whatever it accepts has well-formed
// entries that Check can use.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("# c\n\n" + good + "\r\nold:$6$TbNk44u0UDm+xiZe$+/AdVwA27kmBnxRN+3SoGEGzHHnYPxkcuNNY539rxPM9p1PCIzxd7hiP3OOQV3nNdDE8UxswerWKNpgJb1E+Aw==\n"))
	f.Add([]byte("a:$7$$$\n"))
	f.Add([]byte(":::\n$\n"))
	f.Add([]byte("gw:$7$-1$" + salt + "$" + hash))
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := Parse(data)
		if err != nil {
			if !strings.Contains(err.Error(), ":") {
				t.Fatalf("error without a line number: %v", err)
			}
			return
		}
		for user, e := range pf.users {
			if user == "" || len(e.salt) != saltBytes || len(e.hash) != hashBytes || (e.kind != '6' && e.kind != '7') {
				t.Fatalf("accepted a bad entry for %q: %+v", user, e)
			}
			if e.iterations <= 1000 {
				if err := pf.Check(user, "fuzz"); err == nil {
					t.Fatalf("password %q accepted for %q", "fuzz", user)
				}
			}
		}
	})
}
