// Package hangup turns SIGHUP into reload requests, the Unix way of asking a
// daemon to re-read its files (systemd's ExecReload, `kill -HUP`).
package hangup

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Reloads returns a channel that delivers once per SIGHUP until ctx is done
// (a signal that arrives while one is still undelivered is merged into it),
// and a function that stops listening.
func Reloads(ctx context.Context) (<-chan struct{}, func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
			case <-ctx.Done():
				return
			}
			select {
			case reload <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return reload, func() { signal.Stop(hup) }
}
