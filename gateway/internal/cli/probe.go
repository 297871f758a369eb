package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
)

// responder is a unit that answered the probe.
type responder struct {
	unit uint8
	baud int
	how  string // what it answered to the first read
	fits []fit
}

// fit is a profile whose whole map the unit answers with good values.
type fit struct {
	p      *profiles.Profile
	rows   []row
	factor int // how well its factory settings match what was found
}

func probeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("probe", stderr)
	var t target
	t.flags(fs)
	bauds := fs.String("bauds", "2400,4800,9600,19200,38400,115200", "baud rates to try, in order (serial only)")
	units := fs.String("units", "1-247", "unit addresses to try")
	quick := fs.Bool("quick", false, "try only units 1-16 and the profiles' factory addresses")
	allBauds := fs.Bool("all-bauds", false, "keep trying the other baud rates after units answer at one")
	only := fs.String("profile", "", "check only these profiles (comma-separated)")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if err := t.resolve(); err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	candidates, err := probeProfiles(&t, *only)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	list := *units
	if *quick {
		list = "1-16"
		for _, p := range candidates {
			list += fmt.Sprintf(",%d", p.Modbus.Defaults.Unit)
		}
	}
	addrs, err := parseUnits(list)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	// Most units answer within a few character times; absent ones should
	// not cost the full poll timeout each.
	probeTimeout := t.timeout
	rates := []int{t.baud}
	if t.serial() && t.baud == 0 {
		if rates, err = parseBauds(*bauds); err != nil {
			fmt.Fprintln(stderr, err)
			return ExitUsage
		}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	var found []*responder
	for _, baud := range rates {
		began := time.Now()
		if probeTimeout == 0 && baud != 0 {
			t.timeout = 100*time.Millisecond + 20*t.mode(baud).CharTime()
		}
		got, noise, err := scan(ctx, &t, baud, addrs)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return ExitFail
		}
		fmt.Fprintf(stderr, "%s: %d unit(s) answer of %d tried (%s)", t.describe(baud), len(got), len(addrs),
			time.Since(began).Round(100*time.Millisecond))
		if noise > 0 {
			fmt.Fprintf(stderr, "; %d garbled replies (wrong baud or parity, or a unit talking over another)", noise)
		}
		fmt.Fprintln(stderr)
		found = append(found, got...)
		if ctx.Err() != nil || (len(got) > 0 && !*allBauds) {
			break
		}
	}
	if len(found) == 0 {
		fmt.Fprintln(stdout, "no unit answered. Check wiring (A/B swapped?), power, termination, and try -parity even.")
		return ExitFail
	}
	for _, r := range found {
		r.fits = matchProfiles(ctx, &t, r, candidates)
	}
	printProbe(stdout, found)
	return ExitOK
}

// probeProfiles are the Modbus profiles a probe tries.
func probeProfiles(t *target, only string) ([]*profiles.Profile, error) {
	var out []*profiles.Profile
	for _, m := range t.set.ModbusModels() {
		p, _ := t.set.Get(m)
		if p.Modbus == nil {
			continue
		}
		if only != "" && !strings.Contains(","+only+",", ","+m+",") {
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no profiles match %q", only)
	}
	return out, nil
}

// scan tries each unit with a one-register read of holding register 0. An
// exception still proves the unit is there.
func scan(ctx context.Context, t *target, baud int, addrs []uint8) ([]*responder, int, error) {
	c, err := t.client(baud)
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	var got []*responder
	noise := 0
	for _, u := range addrs {
		if ctx.Err() != nil {
			break
		}
		words, err := c.ReadRegisters(ctx, u, modbus.Holding, 0, 1)
		var ex *modbus.ExceptionError
		switch {
		case err == nil:
			got = append(got, &responder{unit: u, baud: baud, how: fmt.Sprintf("holding 0 = 0x%04X", words[0])})
		case errors.As(err, &ex):
			got = append(got, &responder{unit: u, baud: baud, how: ex.Error()})
		case modbus.Kind(err) == "connection":
			return nil, 0, err
		case modbus.Alive(err):
			noise++
		}
	}
	return got, noise, nil
}

// matchProfiles reads each candidate's whole map from the unit and keeps
// those that answer every request with good values, best first.
func matchProfiles(ctx context.Context, t *target, r *responder, candidates []*profiles.Profile) []fit {
	c, err := t.client(r.baud)
	if err != nil {
		return nil
	}
	defer c.Close()
	var fits []fit
	for _, p := range candidates {
		rows := readProfile(ctx, c, r.unit, p, p.Modbus.MaxGap)
		ok := len(rows) > 0
		for _, row := range rows {
			ok = ok && row.Err == nil && row.Bad == ""
		}
		if !ok {
			continue
		}
		f := fit{p: p, rows: rows}
		if p.Modbus.Defaults.Baud == r.baud || r.baud == 0 {
			f.factor += 2
		}
		if p.Modbus.Defaults.Unit == int(r.unit) {
			f.factor++
		}
		fits = append(fits, f)
	}
	sort.SliceStable(fits, func(i, j int) bool {
		if fits[i].factor != fits[j].factor {
			return fits[i].factor > fits[j].factor
		}
		return len(fits[i].rows) > len(fits[j].rows)
	})
	return fits
}

func printProbe(w io.Writer, found []*responder) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tBAUD\tFIRST ANSWER\tPROFILES THAT READ CLEANLY (best first)")
	for _, r := range found {
		baud := "-"
		if r.baud != 0 {
			baud = fmt.Sprint(r.baud)
		}
		if len(r.fits) == 0 {
			fmt.Fprintf(tw, "%d\t%s\t%s\tnone of the known profiles\n", r.unit, baud, r.how)
			continue
		}
		for i, f := range r.fits {
			var vals []string
			for _, row := range f.rows {
				vals = append(vals, fmt.Sprintf("%s %g%s", row.Metric, row.Value, unitSuffix(row.Unit)))
			}
			if i == 0 {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s: %s\n", r.unit, baud, r.how, f.p.Model, strings.Join(vals, ", "))
			} else {
				fmt.Fprintf(tw, "\t\t\t%s: %s\n", f.p.Model, strings.Join(vals, ", "))
			}
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\nA profile \"reads cleanly\" when every register it names answers with a value in range; check the values against the site before choosing.")
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " " + u
}
