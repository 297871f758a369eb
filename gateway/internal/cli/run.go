package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/fieldwatch/fieldwatch/gateway/internal/app"
	gwcommand "github.com/fieldwatch/fieldwatch/gateway/internal/command"
	"github.com/fieldwatch/fieldwatch/gateway/internal/portlock"
	"github.com/fieldwatch/fieldwatch/gateway/internal/update"
	"github.com/fieldwatch/fieldwatch/internal/hangup"
	"github.com/fieldwatch/fieldwatch/internal/logging"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

func runCmd(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	cfg := fs.String("c", defaultConfig(), "config `FILE`")
	level := fs.String("log-level", "info", "`LEVEL`: debug, info, warn or error")
	format := fs.String("log-format", "text", "`FORMAT`: text or json")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	log, err := logging.New(stderr, *level, *format)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	reload, stopHUP := hangup.Reloads(ctx)
	defer stopHUP()
	exe := os.Args[0]
	if abs, err := filepath.Abs(exe); err == nil {
		exe = abs
	}
	err = app.Run(ctx, app.Options{ConfigPath: *cfg, Log: log, Reload: reload,
		LockDir: portlock.Dir(), Executable: exe, Trial: os.Getenv(update.TrialEnv)})
	var ce yamlconf.Errors
	if t, ok := update.IsSwap(err); ok {
		// A new release on trial (docs/fleet.md, Binary updates): this
		// process then becomes whatever the link names, the new binary
		// or the old one again.
		next, err := t.Run(ctx, os.Args[1:])
		if err != nil {
			log.Warn("stopped during the trial of a new release", "err", err)
			return ExitOK
		}
		log.Info("starting the gateway again", "binary", next)
		err = update.Exec(next, os.Args[1:])
		log.Error("cannot start the gateway again", "binary", next, "err", err)
		return ExitFail
	}
	switch {
	case errors.Is(err, app.ErrRestart):
		log.Info("gateway stopped to restart (remote command)", "exit_status", gwcommand.ExitRestart)
		return gwcommand.ExitRestart
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "invalid config:\n%v\n", err)
		return ExitConfig
	case err != nil:
		log.Error("gateway stopped", "err", err)
		return ExitFail
	}
	log.Info("gateway stopped")
	return ExitOK
}
