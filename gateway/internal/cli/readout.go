package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
)

// row is one decoded field, with the registers it came from.
type row struct {
	Metric  string
	Table   modbus.Table
	Address uint16
	Type    modbus.Type
	Raw     []uint16
	Value   float64
	Unit    string
	Bad     string
	Err     error // the request for this field failed
}

// readProfile reads every field of p from unit, as the gateway's poller
// plans it, and returns one row per field (failed requests included).
func readProfile(ctx context.Context, c modbus.Client, unit uint8, p *profiles.Profile, gap int) []row {
	fields := p.Modbus.Fields
	var rows []row
	for _, req := range modbus.Plan(fields, gap, 0) {
		words, err := c.ReadRegisters(ctx, unit, req.Table, req.Address, req.Count)
		for _, i := range req.Fields {
			f := &fields[i]
			r := row{Metric: f.Metric, Table: f.Table, Address: f.Address, Type: f.Type, Unit: f.Unit, Err: err}
			if err == nil {
				r.Raw = append([]uint16(nil), req.Words(words, f)...)
				r.Value, r.Bad = f.Decode(r.Raw)
			}
			rows = append(rows, r)
		}
	}
	return rows
}

func printRows(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tVALUE\tUNIT\tQUALITY\tREGISTER\tRAW")
	for _, r := range rows {
		reg := fmt.Sprintf("%s 0x%04X", r.Table, r.Address)
		if r.Err != nil {
			fmt.Fprintf(tw, "%s\t—\t%s\tFAILED: %s\t%s\t\n", r.Metric, r.Unit, modbus.Kind(r.Err), reg)
			continue
		}
		quality := "good"
		if r.Bad != "" {
			quality = "BAD: " + r.Bad
		}
		raw := make([]string, len(r.Raw))
		for i, w := range r.Raw {
			raw[i] = fmt.Sprintf("%04X", w)
		}
		fmt.Fprintf(tw, "%s\t%g\t%s\t%s\t%s\t%s\n", r.Metric, r.Value, r.Unit, quality, reg, strings.Join(raw, " "))
	}
	tw.Flush()
}
