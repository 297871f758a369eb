package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
)

// TestInfluxToken: the InfluxDB token comes from store.influxdb.token_file,
// -influx-token-file, $FIELDWATCH_INFLUX_TOKEN or -influx-token, in that
// rising order of precedence; only the flag is marked for the warning at
// start (and `validate` prints it), for the flag is in /proc/PID/cmdline.
// The run-time warning is cloud/internal/app TestSecretWarnings.
func TestInfluxToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	fileTok := write("file.token", "from-config-file\n", 0o600)
	flagTok := write("flag.token", "from-flag-file\n", 0o600)
	cfg := write("cloud.yaml", "store:\n  influxdb: {url: http://influx:8086, bucket: b, token_file: "+fileTok+"}\n", 0o600)
	noTokenCfg := write("plain.yaml", "store:\n  influxdb: {url: http://influx:8086, bucket: b}\n", 0o600)
	tests := []struct {
		name, env string
		args      []string
		want      string
		from      config.TokenSource
	}{
		{"config token_file", "", []string{"-c", cfg}, "from-config-file", config.TokenFromConfig},
		{"environment", "from-env", []string{"-c", noTokenCfg}, "from-env", config.TokenFromEnv},
		{"environment over token_file", "from-env", []string{"-c", cfg}, "from-env", config.TokenFromEnv},
		{"-influx-token-file over the environment", "from-env", []string{"-c", cfg, "-influx-token-file", flagTok},
			"from-flag-file", config.TokenFromConfig},
		{"-influx-token over all", "from-env", []string{"-c", cfg, "-influx-token", "from-flag"}, "from-flag", config.TokenFromFlag},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(config.EnvInfluxToken, tc.env)
			c, _, _, err := flags("validate", append(tc.args, "-data", t.TempDir()), &strings.Builder{})
			if err != nil {
				t.Fatal(err)
			}
			if ix := c.Store.InfluxDB; ix.Token != tc.want || ix.TokenFrom != tc.from {
				t.Fatalf("token %q from %q, want %q from %q", ix.Token, ix.TokenFrom, tc.want, tc.from)
			}
			code, out, errs := runCLI(append([]string{"validate"}, append(tc.args, "-data", t.TempDir())...)...)
			warned := strings.Contains(errs, "/proc/PID/cmdline")
			if code != ExitOK || warned != (tc.from == config.TokenFromFlag) {
				t.Fatalf("validate: exit %d, warned %v:\n%s%s", code, warned, out, errs)
			}
			if strings.Contains(out+errs, tc.want) {
				t.Fatalf("validate shows the token:\n%s%s", out, errs)
			}
		})
	}

	// validate names a token file others can read.
	os.Chmod(fileTok, 0o644)
	t.Setenv(config.EnvInfluxToken, "")
	code, out, errs := runCLI("validate", "-c", cfg, "-data", t.TempDir())
	if code != ExitOK || !strings.Contains(errs, "warning: store.influxdb.token_file: "+fileTok+" (mode 0644)") {
		t.Fatalf("validate with a 0644 token file: exit %d\n%s%s", code, out, errs)
	}
}
