package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/gateway/internal/portlock"
)

// portInfo is a serial port and, when the running gateway owns it, who.
type portInfo struct {
	serialport.Info
	Owner *portlock.Owner `json:"owner,omitempty"`
}

func portsCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("ports", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	list, err := serialport.List()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
	}
	ports := make([]portInfo, len(list))
	for i, p := range list {
		ports[i].Info = p
		var inUse *portlock.InUseError
		if errors.As(portlock.Check(portlock.Dir(), p.Name), &inUse) {
			ports[i].Owner = &inUse.Owner
		}
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
	fmt.Fprintln(tw, "PORT\tUSB ID\tADAPTER\tSERIAL\tIN USE BY\tMANUFACTURER / PRODUCT")
	for _, p := range ports {
		id, adapter := "-", ""
		if p.USB {
			id = p.VID + ":" + p.PID
			adapter = serialport.Adapter(p.VID, p.PID)
		}
		owner := "-"
		if o := p.Owner; o != nil && o.PID != 0 {
			owner = fmt.Sprintf("gateway pid %d, %s %s", o.PID, o.Kind, o.Name)
		} else if o != nil {
			owner = "a gateway"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s %s\n", p.Name, id, adapter, p.Serial, owner, p.Manufacturer, p.Product)
	}
	tw.Flush()
	return ExitOK
}
