package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestSecretsStayOutOfLogsAndStatus runs the gateway at debug level with a
// password file for the uplink and a password for an MQTT source, through
// a good start, a refused login (wrong password after a reload) and a
// refused reload: neither password appears in any log line, in /status or
// in /metrics.
func TestSecretsStayOutOfLogsAndStatus(t *testing.T) {
	const uplinkPW, sourcePW = "uplink-Pa55-7f3a", "source-Pa55-91c2"
	mosq := testenv.StartMosquittoWith(t, testenv.MosquittoOptions{Users: map[string]string{
		"farm-secret": uplinkPW, "chirpstack": sourcePW}})
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "uplink.password")
	path := filepath.Join(dir, "gateway.yaml")
	write := func(name, body string) {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	config := func(extra string) string {
		return fmt.Sprintf(`gateway: {id: farm-secret}
uplink: {brokers: ["%[1]s"], password_file: %[2]s}
buffer: {dir: %[3]s, fsync: "off"}
http: {listen: "127.0.0.1:0"}
mqtt_sources:
  - {id: cs, profile: chirpstack/soil-sensor, brokers: ["%[1]s"], topic: a/b, username: chirpstack, password: %[4]s%[5]s}
`, mosq.URL, pwFile, filepath.Join(dir, "buf"), sourcePW, extra)
	}
	write(pwFile, uplinkPW+"\n")
	write(path, config(""))
	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reload := make(chan struct{})
	addr := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: path, Log: log, Reload: reload, Listening: func(a string) { addr <- a }})
	}()
	base := "http://" + <-addr
	status := func() Status { return statusOf(t, base) }
	testenv.Eventually(t, "uplink and source connected with their passwords", wait, func() bool {
		s := status()
		return s.Connected && len(s.Sources) == 1 && s.Sources[0].Connected
	})

	write(pwFile, "not-the-password\n") // refused by the broker
	reload <- struct{}{}
	testenv.Eventually(t, "reload with the wrong password applied", wait, func() bool {
		return metric(t, base, `fieldwatch_gateway_config_reloads_total{result="success"}`) == "1"
	})
	testenv.Eventually(t, "uplink refused by the broker", wait, func() bool {
		s := status()
		return !s.Connected && len(s.Sources) == 1 && s.Sources[0].Connected
	})
	write(path, config(", typo: 1")) // refused by the config
	reload <- struct{}{}
	testenv.Eventually(t, "bad reload refused", wait, func() bool {
		return metric(t, base, `fieldwatch_gateway_config_reloads_total{result="failure"}`) == "1"
	})
	_, st := get(t, base+"/status")
	_, metrics := get(t, base+"/metrics")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"log": logs.String(), "/status": st, "/metrics": metrics} {
		for _, secret := range []string{uplinkPW, sourcePW, "not-the-password"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows the password %q:\n%s", what, secret, text)
			}
		}
	}
	if !strings.Contains(logs.String(), "config reload refused") {
		t.Fatalf("the log is missing what happened:\n%s", logs.String())
	}
}

// statusOf is the gateway's /status at base, zero while it is not ready.
func statusOf(t *testing.T, base string) Status {
	var s Status
	if code, body := get(t, base+"/status"); code == http.StatusOK {
		json.Unmarshal([]byte(body), &s)
	}
	return s
}
