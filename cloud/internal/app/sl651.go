package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/cloud/internal/ingest"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/sl651listen"
)

// sl651Station is the SL 651 central station listener, when sl651.listen
// is set.
type sl651Station struct {
	l  *sl651listen.Listener
	ln net.Listener
}

// startSL651 listens for SL 651 telemetry stations (nil when sl651.listen
// is empty).
func startSL651(cfg config.SL651, in *ingest.Ingestor, rg *registry.Registry, log *slog.Logger,
	reg prometheus.Registerer) (*sl651Station, error) {
	if cfg.Listen == "" {
		return nil, nil
	}
	l, err := sl651listen.New(sl651listen.Options{Config: cfg, Sink: in, Registry: rg, Log: log, Reg: reg})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("sl651.listen: cannot listen on %s: %w", cfg.Listen, err)
	}
	return &sl651Station{l: l, ln: ln}, nil
}

// addr is where it listens ("" when off).
func (s *sl651Station) addr() string {
	if s == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// serve takes stations until ctx ends (returns at once when off).
func (s *sl651Station) serve(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return s.l.Serve(ctx, s.ln)
}

// close closes the listener (Serve does on its own once started).
func (s *sl651Station) close() {
	if s != nil {
		s.ln.Close()
	}
}
