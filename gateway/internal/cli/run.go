package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/fieldwatch/fieldwatch/gateway/internal/app"
	gwcommand "github.com/fieldwatch/fieldwatch/gateway/internal/command"
	"github.com/fieldwatch/fieldwatch/gateway/internal/portlock"
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
	err = app.Run(ctx, app.Options{ConfigPath: *cfg, Log: log, Reload: reload,
		LockDir: portlock.Dir()})
	var ce yamlconf.Errors
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
