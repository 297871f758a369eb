package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TelegrafVersion is the Telegraf release the side-by-side ingest benchmark
// compares the cloud with.
const TelegrafVersion = "v1.39.3"

// TelegrafPlugins are the plugins the benchmark uses; Telegraf is built
// with only them ("custom" and a tag per plugin), which is smaller and
// builds much faster than the full agent. mqtt_consumer's data_format
// "influx" needs the influx parser, which is a plugin of its own.
var TelegrafPlugins = []string{"inputs.mqtt_consumer", "outputs.influxdb_v2", "parsers.influx"}

// Telegraf returns the path of Telegraf TelegrafVersion with
// TelegrafPlugins: $FIELDWATCH_TELEGRAF, else the one in the cache
// directory, which is built there with go install (from the module proxy, a
// minute or a few) the first time it is asked for, or again when the one
// there lacks a plugin. Only the benchmark that compares with Telegraf
// asks, so `make test` never builds it.
func Telegraf(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FIELDWATCH_TELEGRAF"); p != "" {
		return p
	}
	dir := filepath.Join(CacheDir(), "telegraf-"+TelegrafVersion)
	bin := filepath.Join(dir, "telegraf")
	if missing := missingPlugins(bin); len(missing) == 0 {
		return bin
	} else if _, err := os.Stat(bin); err == nil {
		fmt.Fprintf(os.Stderr, "%s lacks %v: building it again\n", bin, missing)
	}
	if err := installTelegraf(dir); err != nil {
		t.Fatal(err)
	}
	if missing := missingPlugins(bin); len(missing) > 0 {
		t.Fatalf("%s was built without %v", bin, missing)
	}
	return bin
}

// missingPlugins lists the TelegrafPlugins that `bin plugins` does not
// list: all of them if bin cannot run.
func missingPlugins(bin string) []string {
	out, err := exec.Command(bin, "plugins").Output()
	if err != nil {
		return TelegrafPlugins
	}
	have := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		have[p] = true
	}
	var missing []string
	for _, p := range TelegrafPlugins {
		if !have[p] {
			missing = append(missing, p)
		}
	}
	return missing
}

// installTelegraf builds Telegraf into a temporary directory beside dir and
// renames the binary into dir, so an interrupted build is redone and two
// builds at once do not see each other's half-written binary.
func installTelegraf(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	tags := "custom," + strings.Join(TelegrafPlugins, ",")
	pkg := "github.com/influxdata/telegraf/cmd/telegraf@" + TelegrafVersion
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "install", "-tags", tags, pkg)
	cmd.Dir = tmp // outside any module: go install pkg@version needs none
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	fmt.Fprintf(os.Stderr, "building Telegraf %s (-tags %s) into %s (once; a few minutes)\n", TelegrafVersion, tags, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cannot build Telegraf: go install -tags %s %s: %v\n%s", tags, pkg, err, out)
	}
	return os.Rename(filepath.Join(tmp, "telegraf"), filepath.Join(dir, "telegraf"))
}
