package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
)

func validateCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", stderr)
	path := fs.String("c", defaultConfig(), "config `FILE`")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	cfg, err := config.LoadFile(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitConfig
	}
	devices := 0
	var used []string
	for _, b := range cfg.Buses {
		devices += len(b.Devices)
		for _, d := range b.Devices {
			used = append(used, d.Profile)
		}
	}
	for _, s := range cfg.Streams {
		used = append(used, s.Profile)
	}
	for _, m := range cfg.MQTTSources {
		used = append(used, m.Profile)
	}
	for _, model := range used {
		p, _ := cfg.Profiles.Get(model)
		if err := p.RunTests(); err != nil {
			fmt.Fprintf(stderr, "profile %s fails its own test vectors:\n%v\n", model, err)
			return ExitConfig
		}
	}
	for _, l := range cfg.Loose {
		fmt.Fprintf(stderr, "warning: %v; chmod 600 it and chown it to the service's user\n", l)
	}
	fmt.Fprintf(stdout, "%s: ok — gateway %s, %d bus(es) with %d device(s), %d stream device(s), %d MQTT source(s)",
		*path, cfg.Gateway.ID, len(cfg.Buses), devices, len(cfg.Streams), len(cfg.MQTTSources))
	if n := len(cfg.HJ212Uplinks); n > 0 {
		fmt.Fprintf(stdout, ", %d HJ 212 platform(s)", n)
	}
	fmt.Fprintln(stdout)
	return ExitOK
}
