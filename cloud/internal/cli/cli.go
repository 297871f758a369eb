// Package cli is the fieldwatch-cloud command line: run, validate, token,
// fleet, rollout, backup, restore, version.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/fieldwatch/fieldwatch/cloud/internal/app"
	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/internal/hangup"
	"github.com/fieldwatch/fieldwatch/internal/logging"
	"github.com/fieldwatch/fieldwatch/internal/version"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFail   = 1
	ExitUsage  = 2
	ExitConfig = 3
)

// Main runs the command line and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return ExitUsage
	}
	switch args[0] {
	case "run":
		return run(ctx, args[1:], stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "token":
		return token(args[1:], stdout, stderr)
	case "fleet":
		return fleet(ctx, args[1:], stdout, stderr)
	case "rollout":
		return rolloutCmd(ctx, args[1:], stdout, stderr)
	case "backup":
		return backupCmd(ctx, args[1:], stdout, stderr)
	case "restore":
		return restoreCmd(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "fieldwatch-cloud %s (%s, %s/%s)\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return ExitOK
	case "help", "-h", "--help":
		usage(stderr)
		return ExitOK
	}
	fmt.Fprintf(stderr, "fieldwatch-cloud: unknown command %q\n\n", args[0])
	usage(stderr)
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: fieldwatch-cloud <command> [flags]

commands:
  run       ingest, store, serve the API and dashboard (no flags: embedded broker and store)
  validate  check a config file, with file:line errors
  token     make an API token (-name alice -role operator -file api-tokens.yaml)
  fleet     remote configuration: keygen (a signing key pair), push (a signed config to a gateway)
  rollout   a signed config to a group of gateways in canary and waves: create, list, show, pause, resume, rollback
  backup    copy what the cloud keeps into a new directory, while it runs (-to DIR)
  restore   put a backup in place of a stopped cloud's data (-from DIR)
  version   print the version

Run 'fieldwatch-cloud run -h' for the flags.
`)
}

// flags parses the config file and lets flags override it.
func flags(name string, args []string, stderr io.Writer) (cfg *config.Config, logLevel, logFormat string, err error) {
	fs := flag.NewFlagSet("fieldwatch-cloud "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", os.Getenv("FIELDWATCH_CLOUD_CONFIG"), "config file (optional; defaults run everything embedded)")
	dataDir := fs.String("data", "", "data directory of the embedded store (overrides data_dir)")
	httpAddr := fs.String("http", "", "HTTP listen address (overrides http.listen)")
	mqttListen := fs.String("mqtt-listen", "", "embedded broker listen address (overrides mqtt.listen)")
	mqttURL := fs.String("mqtt-url", "", "external broker URL; disables the embedded broker (overrides mqtt.url)")
	influxURL := fs.String("influx-url", "", "InfluxDB URL; replaces the embedded store (overrides store.influxdb.url)")
	influxTokenFile := fs.String("influx-token-file", "", "file holding the InfluxDB token (overrides store.influxdb.token_file and $"+
		config.EnvInfluxToken+")")
	influxToken := fs.String("influx-token", "", "InfluxDB token: DISCOURAGED, every local user can read it in /proc/PID/cmdline; "+
		"use -influx-token-file, $"+config.EnvInfluxToken+" or store.influxdb.token_file")
	influxOrg := fs.String("influx-org", "", "InfluxDB organisation")
	influxBucket := fs.String("influx-bucket", "", "InfluxDB bucket (1.8: db/autogen)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		return nil, "", "", err
	}
	cfg, err = config.LoadFile(*path)
	if err != nil {
		return nil, "", "", err
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.DataDir, *dataDir)
	set(&cfg.HTTP.Listen, *httpAddr)
	set(&cfg.MQTT.Listen, *mqttListen)
	set(&cfg.MQTT.URL, *mqttURL)
	set(&cfg.Store.InfluxDB.URL, *influxURL)
	// The InfluxDB token: a flag over the environment over the file's.
	ix := &cfg.Store.InfluxDB
	switch env := os.Getenv(config.EnvInfluxToken); {
	case *influxToken != "":
		ix.Token, ix.TokenFile, ix.TokenFrom = *influxToken, "", config.TokenFromFlag
	case *influxTokenFile != "":
		ix.Token, ix.TokenFile, ix.TokenFrom = "", *influxTokenFile, config.TokenFromConfig
	case env != "":
		ix.Token, ix.TokenFile, ix.TokenFrom = env, "", config.TokenFromEnv
	}
	set(&cfg.Store.InfluxDB.Org, *influxOrg)
	set(&cfg.Store.InfluxDB.Bucket, *influxBucket)
	if err := cfg.Check(); err != nil {
		return nil, "", "", err
	}
	return cfg, *level, *format, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, level, format, err := flags("run", args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		return configError(stderr, err)
	}
	log, err := logging.New(stderr, level, format)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	if !cfg.Alerting.Disabled {
		if _, _, err := app.CheckRules(cfg.Alerting); err != nil {
			fmt.Fprintf(stderr, "invalid rules:\n%v\n", err)
			return ExitConfig
		}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	reload, stopHUP := hangup.Reloads(ctx)
	defer stopHUP()
	if err := app.Run(ctx, app.Options{Config: cfg, Log: log, Reload: reload}); err != nil {
		log.Error("cloud stopped", "err", err)
		return ExitFail
	}
	log.Info("cloud stopped")
	return ExitOK
}

func validate(args []string, stdout, stderr io.Writer) int {
	cfg, _, _, err := flags("validate", args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		return configError(stderr, err)
	}
	where := "embedded store in " + cfg.DataDir
	if cfg.Store.InfluxDB.URL != "" {
		where = "InfluxDB " + cfg.Store.InfluxDB.URL
	}
	broker := "embedded broker on " + cfg.MQTT.Listen
	if cfg.MQTT.URL != "" {
		broker = "broker " + cfg.MQTT.URL
	}
	rules := "early warnings off"
	if !cfg.Alerting.Disabled {
		on, notes, err := app.CheckRules(cfg.Alerting)
		if err != nil {
			fmt.Fprintf(stderr, "invalid rules:\n%v\n", err)
			return ExitConfig
		}
		for _, n := range notes {
			fmt.Fprintln(stdout, n)
		}
		rules = fmt.Sprintf("%d early-warning rules", on)
	}
	for _, l := range cfg.Loose {
		fmt.Fprintf(stderr, "warning: %v; chmod 600 it and chown it to the service's user\n", l)
	}
	if cfg.Store.InfluxDB.TokenFrom == config.TokenFromFlag {
		fmt.Fprintf(stderr, "warning: %s\n", app.FlagSecretWarning)
	}
	if h := cfg.HJ212; h.Enabled() {
		fmt.Fprintf(stdout, "HJ 212 platform on %s (TLS %v): %d data loggers\n", h.Listen, h.ServerTLS != nil, len(h.Loggers))
	}
	fmt.Fprintf(stdout, "ok — %s, %s, HTTP on %s (API: %d tokens, anonymous role %s), %s\n", broker, where, cfg.HTTP.Listen,
		cfg.HTTP.Tokens.Len(), cfg.HTTP.AnonymousRole(), rules)
	if s := cfg.SL651; s.Listen != "" {
		fmt.Fprintf(stdout, "SL 651 central station %d on %s: %d stations, confirmations end with %s\n", s.Central, s.Listen,
			len(s.Stations), s.Confirm)
	}
	return ExitOK
}

func configError(stderr io.Writer, err error) int {
	var ye yamlconf.Errors
	if errors.As(err, &ye) {
		fmt.Fprintf(stderr, "invalid config:\n%v\n", err)
		return ExitConfig
	}
	fmt.Fprintln(stderr, err)
	return ExitUsage
}
