// Package testenv starts the real servers Fieldwatch's integration tests
// talk to — Mosquitto and InfluxDB — on free loopback ports, and stops them
// when the test ends. `make deps` installs them (see the Makefile):
// Mosquitto from Debian's package, InfluxDB 1.8.10 built with go install into
// the cache directory. A test fails, rather than skips, when one is missing.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a loopback TCP port that was free a moment ago. It is
// chosen below the kernel's ephemeral range, so an outgoing connection of
// another test (they take their local ports from that range, and a test
// retrying against a refused port takes many) cannot take it between now
// and the server binding it; and never twice in one test process, so the
// ports of servers not yet started (a cluster's nodes are given all their
// ports before the first starts) cannot collide.
func FreePort(t testing.TB) int {
	t.Helper()
	if lo := ephemeralLow(); lo > minPort+1000 {
		for range 100 {
			port := minPort + rand.IntN(lo-minPort)
			if !handOut(port) {
				continue
			}
			if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				ln.Close()
				return port
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// handedOut are the ports FreePort chose in this process.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// handOut records port as chosen; false if it was before.
func handOut(port int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports[port] {
		return false
	}
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	handedOut.ports[port] = true
	return true
}

// minPort is the lowest port FreePort picks, above the well-known ones.
const minPort = 10000

// ephemeralLow is the lowest port of Linux's ephemeral range, or 0.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}

// CacheDir is where `make deps` puts built tools: $FIELDWATCH_CACHE, else
// ~/.cache/fieldwatch.
func CacheDir() string {
	if d := os.Getenv("FIELDWATCH_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "fieldwatch-cache")
	}
	return filepath.Join(home, ".cache", "fieldwatch")
}

// find locates a server binary: the env variable, then the candidates.
func find(t testing.TB, env string, candidates ...string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	for _, c := range candidates {
		if filepath.IsAbs(c) {
			if _, err := os.Stat(c); err == nil {
				return c
			}
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	t.Fatalf("%s not found (looked for %s and %v); run `make deps` to install it", filepath.Base(candidates[0]), env, candidates)
	return ""
}

// Process is a server started for a test.
type Process struct {
	Name string
	bin  string
	args []string
	log  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *Process) start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("cannot start %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	p.cmd, p.done = cmd, done
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s) and waits.
func (p *Process) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.cmd = nil
}

// Logs returns what the server printed.
func (p *Process) Logs() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func (p *Process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls ready until it succeeds, the process dies, or 30 s pass.
func (p *Process) waitFor(t testing.TB, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = ready(); err == nil {
			return
		}
		if p.exited() {
			t.Fatalf("%s exited while starting:\n%s", p.Name, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 30s: %v\n%s", p.Name, err, p.Logs())
}

func dialable(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
}

// register stops p when the test ends and prints its log if the test failed.
func register(t testing.TB, p *Process) {
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- %s log ---\n%s", p.Name, tail(p.Logs(), 4000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Mosquitto is a running Mosquitto broker.
type Mosquitto struct {
	*Process
	URL  string // tcp://127.0.0.1:port
	Addr string // 127.0.0.1:port
	// TLSURL and TLSAddr are the TLS listener's, when MosquittoOptions.TLS
	// asked for one (ssl://127.0.0.1:port).
	TLSURL  string
	TLSAddr string
	// Dir holds the broker's config, password and ACL files.
	Dir string
}

// MosquittoOptions describe a broker with authentication and an ACL. The
// zero value is StartMosquitto's anonymous broker.
type MosquittoOptions struct {
	// Users are hashed into a password file by the real mosquitto_passwd;
	// any user turns allow_anonymous off.
	Users map[string]string
	// PasswordFile, instead of Users, is a password file to use as it is.
	PasswordFile string
	// ACL, when set, is written to an acl_file.
	ACL string
	// TLS adds a TLS listener on a second free port.
	TLS *MosquittoTLS
	// Config lines are appended to the broker's config.
	Config []string
}

// MosquittoTLS is a TLS listener: the server's certificate and key, and the
// CA that client certificates must come from.
type MosquittoTLS struct {
	CertFile, KeyFile, CAFile string
	// RequireCertificate refuses clients without a certificate from CAFile.
	RequireCertificate bool
	// UseIdentityAsUsername makes the certificate's CN the username.
	UseIdentityAsUsername bool
}

// StartMosquitto starts Mosquitto on a free loopback port, anonymous and
// without persistence. extra lines are appended to its config.
func StartMosquitto(t testing.TB, extra ...string) *Mosquitto {
	t.Helper()
	return StartMosquittoWith(t, MosquittoOptions{Config: extra})
}

// StartMosquittoWith starts Mosquitto on a free loopback port, without
// persistence, with the users, ACL and TLS listener o asks for.
func StartMosquittoWith(t testing.TB, o MosquittoOptions) *Mosquitto {
	t.Helper()
	bin := find(t, "FIELDWATCH_MOSQUITTO", "mosquitto", "/usr/sbin/mosquitto")
	dir := t.TempDir()
	port := FreePort(t)
	lines := []string{fmt.Sprintf("listener %d 127.0.0.1", port),
		fmt.Sprintf("allow_anonymous %v", len(o.Users) == 0 && o.PasswordFile == ""),
		"persistence false", "log_dest stdout", "log_type error", "log_type warning", "log_type notice"}
	if len(o.Users) > 0 {
		pw := filepath.Join(dir, "passwd")
		for user, password := range o.Users {
			MosquittoPasswd(t, pw, user, password, "")
		}
		lines = append(lines, "password_file "+pw)
	} else if o.PasswordFile != "" {
		lines = append(lines, "password_file "+o.PasswordFile)
	}
	if o.ACL != "" {
		acl := filepath.Join(dir, "acl")
		if err := os.WriteFile(acl, []byte(o.ACL), 0o644); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, "acl_file "+acl)
	}
	var tlsAddr string
	if o.TLS != nil {
		tlsAddr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		lines = append(lines, "listener "+strings.TrimPrefix(tlsAddr, "127.0.0.1:")+" 127.0.0.1",
			"certfile "+o.TLS.CertFile, "keyfile "+o.TLS.KeyFile)
		if o.TLS.CAFile != "" {
			lines = append(lines, "cafile "+o.TLS.CAFile)
		}
		lines = append(lines, fmt.Sprintf("require_certificate %v", o.TLS.RequireCertificate),
			fmt.Sprintf("use_identity_as_username %v", o.TLS.UseIdentityAsUsername))
	}
	if os.Geteuid() == 0 {
		// As root Mosquitto would become the mosquitto user, who cannot
		// read files in the test's private directories.
		lines = append(lines, "user root")
	}
	lines = append(lines, o.Config...)
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &Mosquitto{
		Process: &Process{Name: "mosquitto", bin: bin, args: []string{"-c", confPath}, log: filepath.Join(dir, "mosquitto.log")},
		Addr:    fmt.Sprintf("127.0.0.1:%d", port),
		Dir:     dir,
	}
	m.URL = "tcp://" + m.Addr
	if tlsAddr != "" {
		m.TLSAddr, m.TLSURL = tlsAddr, "ssl://"+tlsAddr
	}
	m.Start(t)
	register(t, m.Process)
	return m
}

// StartMosquittoConfig starts Mosquitto with the whole config conf (a
// shipped one, rewritten for the test's ports and files) and waits until
// every one of addrs accepts connections; the first is Addr and URL.
func StartMosquittoConfig(t testing.TB, conf string, addrs ...string) *Mosquitto {
	t.Helper()
	bin := find(t, "FIELDWATCH_MOSQUITTO", "mosquitto", "/usr/sbin/mosquitto")
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		conf += "\nuser root\n"
	}
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &Mosquitto{
		Process: &Process{Name: "mosquitto", bin: bin, args: []string{"-c", confPath}, log: filepath.Join(dir, "mosquitto.log")},
		Addr:    addrs[0], URL: "tcp://" + addrs[0], Dir: dir,
	}
	m.start(t)
	register(t, m.Process)
	for _, a := range addrs {
		m.waitFor(t, dialable(a))
	}
	return m
}

// MosquittoPasswd adds user with password to the password file at path
// (creating it) with Debian's mosquitto_passwd; algo "" is its default
// ($7$, PBKDF2-SHA512), "sha512" the older $6$.
func MosquittoPasswd(t testing.TB, path, user, password, algo string) {
	t.Helper()
	bin := find(t, "FIELDWATCH_MOSQUITTO_PASSWD", "mosquitto_passwd", "/usr/bin/mosquitto_passwd")
	args := []string{"-b"}
	if algo != "" {
		args = append(args, "-H", algo)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		args = append(args, "-c")
	}
	args = append(args, path, user, password)
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd %s: %v\n%s", user, err, out)
	}
}

// Start starts the broker again on its port (after Stop).
func (m *Mosquitto) Start(t testing.TB) {
	t.Helper()
	m.start(t)
	m.waitFor(t, dialable(m.Addr))
	if m.TLSAddr != "" {
		m.waitFor(t, dialable(m.TLSAddr))
	}
}

// InfluxDB is a running InfluxDB 1.8 serving the v2 write and Flux APIs.
type InfluxDB struct {
	*Process
	URL   string // http://127.0.0.1:port
	Token string // any token is accepted: auth is off
	// TokenFile holds Token (mode 0600), for -influx-token-file: a
	// secret on a command line is readable by every local user.
	TokenFile string
	Bucket    string // db/autogen
	Org       string
}

// InfluxdVersion is the InfluxDB release the tests run against.
const InfluxdVersion = "v1.8.10"

// StartInfluxDB starts influxd with flux enabled on free loopback ports and
// creates the database "db" (bucket "db/autogen").
func StartInfluxDB(t testing.TB) *InfluxDB {
	t.Helper()
	bin := find(t, "FIELDWATCH_INFLUXD", filepath.Join(CacheDir(), "influxd-"+InfluxdVersion, "influxd"), "influxd")
	dir := t.TempDir()
	httpPort, rpcPort := FreePort(t), FreePort(t)
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
  wal-fsync-delay = "0s"
[http]
  bind-address = "127.0.0.1:%d"
  flux-enabled = true
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
`, rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpPort)
	confPath := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "influx.token")
	if err := os.WriteFile(tokenFile, []byte("fieldwatch:fieldwatch\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := &InfluxDB{
		Process:   &Process{Name: "influxd", bin: bin, args: []string{"-config", confPath}, log: filepath.Join(dir, "influxd.log")},
		URL:       fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		TokenFile: tokenFile,
		Token:     "fieldwatch:fieldwatch",
		Bucket:    "db/autogen",
	}
	db.Start(t)
	register(t, db.Process)
	if out, err := db.query("CREATE DATABASE db"); err != nil {
		t.Fatalf("cannot create database: %v %s", err, out)
	}
	return db
}

// Start starts InfluxDB again (after Stop), with its data.
func (db *InfluxDB) Start(t testing.TB) {
	t.Helper()
	db.start(t)
	db.waitFor(t, func() error {
		out, err := db.get("/ping")
		if err == nil && !strings.Contains(out, "204") {
			err = errors.New(out)
		}
		return err
	})
}

func (db *InfluxDB) get(path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return httpDo(ctx, "GET", db.URL+path, nil, "")
}

func (db *InfluxDB) query(q string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return httpDo(ctx, "POST", db.URL+"/query", bytes.NewBufferString("q="+q), "application/x-www-form-urlencoded")
}

// CreateDatabase creates another database (bucket name+"/autogen").
func (db *InfluxDB) CreateDatabase(name string) error {
	out, err := db.query("CREATE DATABASE " + name)
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// Pid is the running server's process id, 0 when it is stopped.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}
