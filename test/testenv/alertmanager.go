package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Alertmanager is a running Prometheus Alertmanager (Debian's
// prometheus-alertmanager), single node, routing everything to a receiver
// that does nothing, so tests read alerts back through its API.
type Alertmanager struct {
	*Process
	URL string // http://127.0.0.1:port
}

// StartAlertmanager starts Alertmanager on a free loopback port with
// clustering off and its storage in a temporary directory, and waits until
// /-/ready answers. The binary is $FIELDWATCH_ALERTMANAGER, else
// prometheus-alertmanager (or alertmanager) on PATH or in /usr/bin.
func StartAlertmanager(t testing.TB) *Alertmanager {
	t.Helper()
	bin := find(t, "FIELDWATCH_ALERTMANAGER", "prometheus-alertmanager", "/usr/bin/prometheus-alertmanager", "alertmanager")
	dir := t.TempDir()
	conf := "route:\n  receiver: \"null\"\n  group_wait: 0s\nreceivers:\n  - name: \"null\"\n"
	confPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	am := &Alertmanager{
		Process: &Process{Name: "alertmanager", bin: bin, log: filepath.Join(dir, "alertmanager.log"), args: []string{
			"--config.file=" + confPath, "--storage.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr, "--cluster.listen-address=", "--log.level=warn"}},
		URL: "http://" + addr,
	}
	am.Start(t)
	register(t, am.Process)
	return am
}

// Start starts Alertmanager again (after Stop) and waits until it is ready.
func (am *Alertmanager) Start(t testing.TB) {
	t.Helper()
	am.start(t)
	am.waitFor(t, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		out, err := httpDo(ctx, "GET", am.URL+"/-/ready", nil, "")
		if err == nil && !strings.HasPrefix(out, "200") {
			err = errors.New(out)
		}
		return err
	})
}
