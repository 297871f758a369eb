// Command fieldwatch-cloud is the Fieldwatch ingestor, store, API and
// dashboard. With no configuration it runs an embedded MQTT broker and an
// embedded store, so one machine can run everything. See docs/cloud.md.
package main

import (
	"context"
	"os"

	"github.com/fieldwatch/fieldwatch/cloud/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
