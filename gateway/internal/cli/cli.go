// Package cli is the fieldwatch-gateway command line: run, validate,
// status and version. Each subcommand parses its own flags.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFail   = 1 // the command ran and failed
	ExitUsage  = 2 // bad arguments
	ExitConfig = 3 // the config is invalid
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = []command{
	{"run", "run the gateway: poll devices, buffer, send to the cloud", runCmd},
	{"validate", "check a config and the profiles it uses, with file:line errors", validateCmd},
	{"ports", "list serial ports, with USB vendor, product and serial number", portsCmd},
	{"probe", "find the units on a bus: their addresses, baud rate and the profiles that fit", probeCmd},
	{"read", "read a device through its profile: a Modbus unit once (or -watch), a stream device or MQTT source for -for", readCmd},
	{"set", "change a unit's address or baud rate through its profile's settings registers", setCmd},
	{"status", "show a running gateway's devices, buffer and uplink", statusCmd},
	{"mode", "put a device of the running gateway in maintenance, calibration or stopped mode by hand, or back to normal", modeCmd},
	{"version", "print the version", versionCmd},
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "fieldwatch-gateway: unknown command %q\n\n", args[0])
	usage(stderr)
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fieldwatch-gateway <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'fieldwatch-gateway <command> -h' for a command's flags.")
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("fieldwatch-gateway "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// defaultConfig is where run, validate and status look without -c.
func defaultConfig() string {
	if p := os.Getenv("FIELDWATCH_GATEWAY_CONFIG"); p != "" {
		return p
	}
	return "/etc/fieldwatch/gateway.yaml"
}
