// Command fieldwatch-gateway is the Fieldwatch edge agent: it polls field
// devices, keeps their readings in a crash-safe buffer and sends them to the
// cloud. See `fieldwatch-gateway help` and docs/gateway.md.
package main

import (
	"context"
	"os"

	"github.com/fieldwatch/fieldwatch/gateway/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
