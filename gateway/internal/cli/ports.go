package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
)

func portsCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("ports", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	ports, err := serialport.List()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(ports)
		return ExitOK
	}
	if len(ports) == 0 {
		fmt.Fprintln(stdout, "no serial ports found (is the USB adapter plugged in? `dmesg | tail` shows what the kernel saw)")
		return ExitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tUSB ID\tADAPTER\tSERIAL\tMANUFACTURER / PRODUCT")
	for _, p := range ports {
		id, adapter := "-", ""
		if p.USB {
			id = p.VID + ":" + p.PID
			adapter = serialport.Adapter(p.VID, p.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\n", p.Name, id, adapter, p.Serial, p.Manufacturer, p.Product)
	}
	tw.Flush()
	return ExitOK
}
