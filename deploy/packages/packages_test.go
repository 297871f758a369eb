// Package packages tests the Debian packages of deploy/packages (nfpm
// configs, maintainer scripts, units) by installing them on this machine:
// install, run the installed binaries, an upgrade with a changed default
// config over an operator's edit, remove and purge, checking what stays.
// It needs root (dpkg -i); as any other user it skips. docs/packages.md.
package packages

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// NfpmVersion is the nfpm the Makefile pins (NFPM_VERSION).
const NfpmVersion = "v2.45.2"

const (
	root    = "../.."
	dataDir = "/var/lib/fieldwatch"
	etcDir  = "/etc/fieldwatch"
	wants   = "/etc/systemd/system/multi-user.target.wants/"
)

var pkgs = []string{"fieldwatch-gateway", "fieldwatch-cloud"}

// updateLink is the path the gateway's unit starts it by (binary updates).
const updateLink = dataDir + "/bin/fieldwatch-gateway"

// wantLink checks that link is a symbolic link to target.
func wantLink(t *testing.T, link, target string) {
	t.Helper()
	if got, err := os.Readlink(link); err != nil || got != target {
		t.Errorf("%s links to %q (%v), want %s", link, got, err, target)
	}
}

func TestPackages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installs packages with dpkg -i: run as root (CI is)")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg on this machine")
	}
	for _, p := range pkgs {
		if exec.Command("dpkg-query", "-W", "-f=${Status}", p).Run() == nil {
			t.Skipf("%s is installed (or half-installed) here: not touching it; dpkg --purge it to run this test", p)
		}
	}
	arch := strings.TrimSpace(run(t, "dpkg", "--print-architecture"))
	nfpm := nfpmTool(t)
	cleanMachine(t)

	// Version 1.0.0 with the shipped defaults, 1.0.1 with both defaults changed.
	work := t.TempDir()
	bins := filepath.Join(work, "bin")
	for _, p := range pkgs {
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-o", bins+"/",
			"-ldflags", "-s -w -X github.com/fieldwatch/fieldwatch/internal/version.Version=1.0.0", "./"+component(p)+"/cmd/"+p)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", p, err, out)
		}
	}
	defaults := map[string]string{
		"fieldwatch-gateway": filepath.Join(root, "deploy/gateway.example.yaml"),
		"fieldwatch-cloud":   filepath.Join(root, "deploy/packages/cloud.yaml"),
	}
	const newDefault = "\n# changed in 1.0.1\n"
	build := func(version string, changed bool) map[string]string {
		debs := map[string]string{}
		out := filepath.Join(work, version)
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range pkgs {
			conf, _ := filepath.Abs(defaults[p])
			if changed {
				data, err := os.ReadFile(conf)
				if err != nil {
					t.Fatal(err)
				}
				conf = filepath.Join(out, filepath.Base(conf))
				if err := os.WriteFile(conf, append(data, newDefault...), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			deb := filepath.Join(out, p+".deb")
			cmd := exec.Command(nfpm, "package", "-f", "deploy/packages/nfpm-"+component(p)+".yaml", "-p", "deb", "-t", deb)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "PKG_VERSION="+version, "PKG_ARCH="+arch,
				"PKG_BIN="+filepath.Join(bins, p), "PKG_CONFIG="+conf)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("nfpm %s: %v\n%s", p, err, out)
			}
			debs[p] = deb
		}
		return debs
	}
	v100, v101 := build("1.0.0", false), build("1.0.1", true)
	if _, err := exec.LookPath("lintian"); err == nil {
		// Shown, not judged: docs/packages.md says which tags are expected.
		out, _ := exec.Command("lintian", "--tag-display-limit", "0", v100["fieldwatch-gateway"], v100["fieldwatch-cloud"]).CombinedOutput()
		t.Logf("lintian:\n%s", out)
	}

	// Install.
	dpkg(t, "-i", v100["fieldwatch-gateway"], v100["fieldwatch-cloud"])
	u, err := user.Lookup("fieldwatch")
	if err != nil {
		t.Fatalf("postinst made no fieldwatch user: %v", err)
	}
	if u.HomeDir != dataDir {
		t.Errorf("fieldwatch's home is %s, want %s", u.HomeDir, dataDir)
	}
	if shell := passwdField(t, "fieldwatch", 6); shell != "/usr/sbin/nologin" {
		t.Errorf("fieldwatch's shell is %q, want /usr/sbin/nologin", shell)
	}
	wantFile(t, "/usr/bin/fieldwatch-gateway", "root", 0o755, false)
	wantFile(t, "/usr/bin/fieldwatch-cloud", "root", 0o755, false)
	wantFile(t, "/usr/lib/systemd/system/fieldwatch-gateway.service", "root", 0o644, false)
	wantFile(t, "/usr/lib/systemd/system/fieldwatch-cloud.service", "root", 0o644, false)
	wantFile(t, etcDir+"/gateway.yaml", "fieldwatch", 0o600, false)
	wantFile(t, etcDir+"/cloud.yaml", "fieldwatch", 0o600, false)
	wantFile(t, dataDir, "fieldwatch", 0o750, true)
	wantFile(t, updateLink[:strings.LastIndex(updateLink, "/")], "fieldwatch", 0o750, true)
	wantLink(t, updateLink, "/usr/bin/fieldwatch-gateway")
	for p, conf := range map[string]string{"fieldwatch-gateway": etcDir + "/gateway.yaml", "fieldwatch-cloud": etcDir + "/cloud.yaml"} {
		if cf := run(t, "dpkg-query", "-W", "-f=${Conffiles}", p); !strings.Contains(cf, conf+" ") {
			t.Errorf("%s's conffiles are %q, want %s among them", p, cf, conf)
		}
	}

	// Enabled (without systemd running: the symlinks deb-systemd-helper makes).
	_, err = exec.LookPath("deb-systemd-helper")
	helper := err == nil
	for _, p := range pkgs {
		if _, err := os.Lstat(wants + p + ".service"); helper && err != nil {
			t.Errorf("%s is not enabled: %v", p, err)
		}
	}

	// The units, as systemd reads them (statically where systemd is not running).
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		out, err := exec.Command("systemd-analyze", "verify",
			"/usr/lib/systemd/system/fieldwatch-gateway.service", "/usr/lib/systemd/system/fieldwatch-cloud.service").CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}

	// The installed binaries run, as the service's user, on the shipped configs.
	for _, args := range [][]string{
		{"/usr/bin/fieldwatch-gateway", "validate", "-c", etcDir + "/gateway.yaml"},
		{"/usr/bin/fieldwatch-cloud", "validate", "-c", etcDir + "/cloud.yaml", "-data", dataDir},
	} {
		if out, err := asFieldwatch(args...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		} else if bytes.Contains(out, []byte("warning:")) {
			t.Errorf("%s warns: %s", strings.Join(args, " "), out)
		}
	}
	for _, p := range pkgs {
		if out := run(t, "/usr/bin/"+p, "version"); !strings.HasPrefix(out, p+" 1.0.0 ") {
			t.Errorf("%s version: %q", p, out)
		}
	}
	runCloud(t) // the shipped default runs: embedded broker and store in /var/lib/fieldwatch

	// A release taken over the air switched the unit's link; the upgrade
	// points it back at the packaged binary.
	if err := os.Remove(updateLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dataDir+"/bin/fieldwatch-gateway-9.9.9-0123456789ab", updateLink); err != nil {
		t.Fatal(err)
	}
	// The operator edits the gateway's config and keeps data beside the store.
	edit := "\n# edited by the operator\n"
	appendFile(t, etcDir+"/gateway.yaml", edit)
	keep := filepath.Join(dataDir, "keep-me")
	if err := os.WriteFile(keep, []byte("readings"), 0o640); err != nil {
		t.Fatal(err)
	}

	// Upgrade: the edited config stays and the new default lands beside it;
	// the unedited one is replaced by the new default.
	dpkg(t, "--force-confold", "-i", v101["fieldwatch-gateway"], v101["fieldwatch-cloud"])
	for _, p := range pkgs {
		if out := run(t, "/usr/bin/"+p, "version"); !strings.HasPrefix(out, p+" 1.0.0 ") {
			t.Errorf("%s version after the upgrade: %q (both are built as 1.0.0)", p, out)
		}
		if v := run(t, "dpkg-query", "-W", "-f=${Version}", p); v != "1.0.1" {
			t.Errorf("%s is at %q after the upgrade, want 1.0.1", p, v)
		}
	}
	if s := readFile(t, etcDir+"/gateway.yaml"); !strings.HasSuffix(s, edit) || strings.Contains(s, newDefault) {
		t.Errorf("the upgrade did not keep the operator's gateway.yaml; it ends in %q", s[max(0, len(s)-80):])
	}
	if s := readFile(t, etcDir+"/gateway.yaml.dpkg-dist"); !strings.HasSuffix(s, newDefault) {
		t.Errorf("gateway.yaml.dpkg-dist is not the new default; it ends in %q", s[max(0, len(s)-80):])
	}
	if s := readFile(t, etcDir+"/cloud.yaml"); !strings.HasSuffix(s, newDefault) {
		t.Errorf("the unedited cloud.yaml is not the new default after the upgrade; it ends in %q", s[max(0, len(s)-80):])
	}
	wantFile(t, etcDir+"/gateway.yaml", "fieldwatch", 0o600, false)
	wantFile(t, etcDir+"/cloud.yaml", "fieldwatch", 0o600, false)
	if out, err := asFieldwatch("/usr/bin/fieldwatch-gateway", "validate", "-c", etcDir+"/gateway.yaml").CombinedOutput(); err != nil {
		t.Errorf("the kept gateway.yaml does not validate: %v\n%s", err, out)
	}

	// Remove keeps config and data; purge deletes the conffiles, keeps the data.
	dpkg(t, "-r", pkgs[0], pkgs[1])
	for _, f := range []string{"/usr/bin/fieldwatch-gateway", "/usr/bin/fieldwatch-cloud", "/usr/lib/systemd/system/fieldwatch-cloud.service"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s is still there after remove", f)
		}
	}
	for _, f := range []string{etcDir + "/gateway.yaml", etcDir + "/cloud.yaml", keep, filepath.Join(dataDir, "fieldwatch.db")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("remove deleted %s: %v", f, err)
		}
	}
	dpkg(t, "-P", pkgs[0], pkgs[1])
	for _, f := range []string{etcDir + "/gateway.yaml", etcDir + "/cloud.yaml", etcDir + "/gateway.yaml.dpkg-dist"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s is still there after purge", f)
		}
	}
	for _, f := range []string{keep, filepath.Join(dataDir, "fieldwatch.db")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("purge deleted %s: %v", f, err)
		}
	}
	for _, p := range pkgs {
		if _, err := os.Lstat(wants + p + ".service"); err == nil {
			t.Errorf("%s is still enabled after purge", p)
		}
	}
	if _, err := user.Lookup("fieldwatch"); err != nil {
		t.Errorf("purge deleted the user that owns %s: %v", dataDir, err)
	}
}

// cleanMachine purges the packages when the test ends, however it ends, and
// removes what purge deliberately keeps (the data directory, the user and
// its group, /etc/fieldwatch) if the test made them: the machine is left
// as it was.
func cleanMachine(t *testing.T) {
	_, dataErr := os.Stat(dataDir)
	_, etcErr := os.Stat(etcDir)
	_, userErr := user.Lookup("fieldwatch")
	_, groupErr := user.LookupGroup("fieldwatch")
	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", pkgs[0], pkgs[1]).CombinedOutput(); err != nil {
			t.Errorf("cleanup: dpkg --purge: %v\n%s", err, out)
		}
		if dataErr != nil {
			os.RemoveAll(dataDir)
		}
		if etcErr != nil {
			os.RemoveAll(etcDir)
		}
		if userErr != nil {
			if out, err := exec.Command("userdel", "fieldwatch").CombinedOutput(); err != nil {
				t.Errorf("cleanup: userdel fieldwatch: %v\n%s", err, out)
			}
		}
		if _, err := user.LookupGroup("fieldwatch"); groupErr != nil && err == nil {
			if out, err := exec.Command("groupdel", "fieldwatch").CombinedOutput(); err != nil {
				t.Errorf("cleanup: groupdel fieldwatch: %v\n%s", err, out)
			}
		}
	})
}

// runCloud runs the installed cloud on the shipped default config as the
// service's user, on free loopback ports, until /healthz answers.
func runCloud(t *testing.T) {
	t.Helper()
	httpAddr, mqttAddr := freeAddr(t), freeAddr(t)
	cmd := asFieldwatch("/usr/bin/fieldwatch-cloud", "run", "-c", etcDir+"/cloud.yaml", "-data", dataDir,
		"-http", httpAddr, "-mqtt-listen", mqttAddr)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("fieldwatch-cloud run on the shipped config ended: %v\n%s", err, log.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("fieldwatch-cloud run on the shipped config: no /healthz in 30 s\n%s", log.String())
}

func component(pkg string) string { return strings.TrimPrefix(pkg, "fieldwatch-") }

// asFieldwatch runs args as the fieldwatch user, as the units do.
func asFieldwatch(args ...string) *exec.Cmd {
	return exec.Command("runuser", append([]string{"-u", "fieldwatch", "--"}, args...)...)
}

func dpkg(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("dpkg", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
	}
	return string(data)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// wantFile checks path's owner (user and group of that name), mode and kind.
func wantFile(t *testing.T, path, owner string, mode fs.FileMode, dir bool) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, _ := user.LookupId(fmt.Sprint(st.Uid))
	g, _ := user.LookupGroupId(fmt.Sprint(st.Gid))
	got := fmt.Sprintf("%v %s:%s", fi.Mode(), name(u), gname(g))
	want := fmt.Sprintf("%v %s:%s", mode|map[bool]fs.FileMode{true: fs.ModeDir}[dir], owner, owner)
	if got != want {
		t.Errorf("%s is %s, want %s", path, got, want)
	}
}

func name(u *user.User) string {
	if u == nil {
		return "?"
	}
	return u.Username
}

func gname(g *user.Group) string {
	if g == nil {
		return "?"
	}
	return g.Name
}

// passwdField is field i (0-based) of user's line in /etc/passwd.
func passwdField(t *testing.T, name string, i int) string {
	for _, line := range strings.Split(readFile(t, "/etc/passwd"), "\n") {
		if f := strings.Split(line, ":"); len(f) == 7 && f[0] == name {
			return f[i]
		}
	}
	return ""
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// nfpmTool is nfpm NfpmVersion from the cache that `make packages` fills
// ($FIELDWATCH_CACHE/nfpm-VERSION/nfpm), built there with go install the
// first time.
func nfpmTool(t *testing.T) string {
	dir := filepath.Join(testenv.CacheDir(), "nfpm-"+NfpmVersion)
	bin := filepath.Join(dir, "nfpm")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "install", "github.com/goreleaser/nfpm/v2/cmd/nfpm@"+NfpmVersion)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install nfpm@%s: %v\n%s", NfpmVersion, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "nfpm"), bin); err != nil {
		t.Fatal(err)
	}
	return bin
}
