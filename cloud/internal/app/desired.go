package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/cloud/internal/desired"
)

// openDesired opens the gateways' desired state (data_dir/desired.db; in
// memory without a data directory).
func openDesired(cfg *config.Config) (*desired.Store, error) {
	path := ""
	if cfg.DataDir != "" {
		path = filepath.Join(cfg.DataDir, "desired.db")
	}
	s, err := desired.Open(path)
	if err != nil {
		return nil, fmt.Errorf("desired state: %w", err)
	}
	return s, nil
}

// keepDesired records what was just published, retained, to gateway gw.
// The broker took it, so a failure here is logged, not returned: the push
// worked, only a restart on the embedded broker would forget it.
func keepDesired(s *desired.Store, kind desired.Kind, gw string, data []byte, log *slog.Logger) {
	if err := s.Put(desired.Item{Kind: kind, Gateway: gw, Data: data, Published: time.Now()}); err != nil {
		log.Error("cannot keep a gateway's desired state; it is retained at the broker only", "gateway", gw,
			"kind", kind, "err", err)
	}
}

// republishDesired publishes the desired state kept in s again once the
// intake is connected to the embedded broker, which keeps retained
// messages in memory. A gateway takes the same version again silently
// (docs/fleet.md).
func republishDesired(ctx context.Context, s *desired.Store, connected func() bool,
	config func(string, []byte) error, release func(context.Context, string, []byte) error, log *slog.Logger) {
	_, err := desired.Republish(ctx, s, connected, 100*time.Millisecond, func(ctx context.Context, it desired.Item) error {
		if it.Kind == desired.Release {
			return release(ctx, it.Gateway, it.Data)
		}
		return config(it.Gateway, it.Data)
	}, log)
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("cannot publish the gateways' desired state again", "err", err)
	}
}
