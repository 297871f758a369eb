package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/gateway/internal/portlock"
)

// openPortLock prepares the runtime directory where the gateway marks its
// serial ports in use. Without one the gateway runs all the same, and says
// (when cfg has serial ports) that the technician commands will not see
// its ports as taken.
func (a *App) openPortLock(dir string, cfg *config.Config) *portlock.Lock {
	if dir == "" {
		return nil
	}
	l, err := portlock.Open(dir)
	if err != nil {
		level := slog.LevelInfo
		if len(owners(cfg)) > 0 {
			level = slog.LevelWarn
		}
		a.log.Log(context.Background(), level, "serial ports not marked in use: read, probe and set run as root will not refuse them", "err", err)
		return nil
	}
	return l
}

// lockPorts makes l hold the serial ports of the configs' buses and stream
// devices, and only those. A port another gateway holds (two on one line)
// is an error; a lock file that cannot be written is only logged.
func (a *App) lockPorts(l *portlock.Lock, cfgs ...*config.Config) error {
	err := l.Set(owners(cfgs...))
	var inUse *portlock.InUseError
	switch {
	case errors.As(err, &inUse) && inUse.Owner.PID != 0:
		o := inUse.Owner
		return fmt.Errorf("serial port %s is owned by another gateway (pid %d, %s %s of %s): one line, one owner",
			inUse.Port, o.PID, o.Kind, o.Name, o.Config)
	case errors.As(err, &inUse):
		return fmt.Errorf("serial port %s is owned by another gateway: one line, one owner", inUse.Port)
	case err != nil:
		a.log.Warn("serial ports not marked in use: read, probe and set run as root will not refuse them", "err", err)
	}
	return nil
}

// owners are the serial ports of the configs' buses and stream devices.
// TCP endpoints are not among them: a server takes many clients.
func owners(cfgs ...*config.Config) []portlock.Owner {
	var out []portlock.Owner
	for _, cfg := range cfgs {
		file, _ := filepath.Abs(cfg.File)
		for _, b := range cfg.Buses {
			if b.Type == "rtu" {
				out = append(out, portlock.Owner{Kind: "bus", Name: b.Name, Port: b.Port, Config: file})
			}
		}
		for _, s := range cfg.Streams {
			if s.Port != "" {
				out = append(out, portlock.Owner{Kind: "stream", Name: s.ID, Port: s.Port, Config: file})
			}
		}
	}
	return out
}
