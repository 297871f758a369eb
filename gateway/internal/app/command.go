package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/fieldwatch/fieldwatch/gateway/internal/command"
	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/gateway/internal/uplink"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// ErrRestart is what Run returns after a restart command: the gateway
// stopped cleanly (buffer closed, "offline" announced) to be started again
// (fieldwatch-gateway run exits with command.ExitRestart).
var ErrRestart = errors.New("restart requested by a remote command")

// onCommand is the uplink's handler for remote commands, nil when the
// config does not take them; it also points the handler at cfg's trust.
func (a *App) onCommand(cfg *config.Config) func([]byte) {
	if !cfg.CommandsEnabled() {
		return nil
	}
	a.cmds.SetTrust(command.Trust{Gateway: cfg.Gateway.ID, Keys: cfg.Fleet.Keys, Dir: cfg.Fleet.Dir})
	return a.cmds.Offer
}

// commandHost is the setup running, as the command handler sees it; nil
// between setups.
func (a *App) commandHost() command.Host {
	r := a.current()
	if r == nil {
		return nil
	}
	return cmdHost{a, r}
}

type cmdHost struct {
	a *App
	r *running
}

func (h cmdHost) Reply(payload []byte) error { return h.r.up.PublishReply(payload) }

func (h cmdHost) Resend(ctx context.Context, from, to uint64) (uplink.ResendResult, error) {
	return h.r.up.Resend(ctx, from, to)
}

// Read polls a Modbus device of the running config once, on its bus's
// goroutine (the bus's one owner), between its scheduled polls.
func (h cmdHost) Read(ctx context.Context, device string) ([]telemetry.Reading, error) {
	for _, b := range h.r.buses {
		if b.HasDevice(device) {
			rs, st, err := b.Read(ctx, device)
			if err != nil {
				return nil, err
			}
			if len(rs) == 0 && st.LastError != "" {
				return nil, fmt.Errorf("%s: %s", device, st.LastError)
			}
			return rs, nil
		}
	}
	for _, s := range h.r.streams {
		if s.Device().ID == device {
			return nil, fmt.Errorf("%s is a stream device: it speaks by itself (its latest readings are on the console); read polls Modbus devices", device)
		}
	}
	return nil, fmt.Errorf("no device %q in the running config", device)
}

func (h cmdHost) Restart() {
	select {
	case h.a.restart <- struct{}{}:
	default:
	}
}
