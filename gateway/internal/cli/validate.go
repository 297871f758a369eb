package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
)

func validateCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", stderr)
	path := fs.String("c", defaultConfig(), "config file")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	cfg, err := config.LoadFile(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitConfig
	}
	devices := 0
	for _, b := range cfg.Buses {
		devices += len(b.Devices)
	}
	fmt.Fprintf(stdout, "%s: ok — gateway %s, %d bus(es), %d device(s)\n", *path, cfg.Gateway.ID, len(cfg.Buses), devices)
	for _, b := range cfg.Buses {
		for _, d := range b.Devices {
			p, _ := cfg.Profiles.Get(d.Profile)
			if err := p.RunTests(); err != nil {
				fmt.Fprintf(stderr, "profile %s fails its own test vectors:\n%v\n", d.Profile, err)
				return ExitConfig
			}
		}
	}
	return ExitOK
}
