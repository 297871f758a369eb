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
	unit     uint8
	baud     int
	how      string // what it answered to the first read
	fits     []fit
	answered int // profiles whose registers it has, listed in fits or not
}

// fit is a profile whose every register the unit answers, with what its
// decoded values say about it (fit.go).
type fit struct {
	p    *profiles.Profile
	rows []row
	ev   evidence
}

func probeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("probe", stderr)
	var t target
	t.flags(fs)
	bauds := fs.String("bauds", "2400,4800,9600,19200,38400,115200", "baud rates to try, a comma-separated `LIST` in order (serial only)")
	units := fs.String("units", "1-247", "unit addresses to try, a `LIST` such as 1-16,45")
	quick := fs.Bool("quick", false, "try only units 1-16 and the profiles' factory addresses")
	allBauds := fs.Bool("all-bauds", false, "keep trying the other baud rates after units answer at one")
	only := fs.String("profile", "", "check only these profiles, comma-separated `MODELS`")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if err := t.resolve(); err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	if err := t.free(); err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
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

// matchRetries is how many more times matchProfiles asks a profile's
// registers after a timeout.
const matchRetries = 2

// matchProfiles reads each candidate's whole map from the unit, keeps
// those whose every request it answers and that decode at least one
// plausible value, and ranks them best first (see fit.go).
func matchProfiles(ctx context.Context, t *target, r *responder, candidates []*profiles.Profile) []fit {
	c, err := t.client(r.baud)
	if err != nil {
		return nil
	}
	defer c.Close()
	var fits []fit
	for _, p := range candidates {
		rows := readProfile(ctx, c, r.unit, p, p.Modbus.MaxGap)
		// The unit is there (it answered the scan), so a timeout is more
		// likely a slow or noisy line than registers it lacks (a unit
		// answers those with an exception): ask again before ruling the
		// profile out, so one lost frame does not hide the right model.
		for try := 0; try < matchRetries && ctx.Err() == nil && modbus.Kind(firstErr(rows)) == "timeout"; try++ {
			rows = readProfile(ctx, c, r.unit, p, p.Modbus.MaxGap)
		}
		if firstErr(rows) != nil || len(rows) == 0 {
			continue // the unit lacks these registers, or is not answering
		}
		r.answered++
		if ev := weigh(p, rows, r.unit, r.baud); ev.plausible > 0 {
			fits = append(fits, fit{p: p, rows: rows, ev: ev})
		}
	}
	sort.SliceStable(fits, func(i, j int) bool { return fits[i].ev.better(fits[j].ev) })
	return fits
}

func printProbe(w io.Writer, found []*responder) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tBAUD\tFIRST ANSWER\tPROFILES THAT FIT (best first)\tWHY\tVALUES")
	for _, r := range found {
		baud := "-"
		if r.baud != 0 {
			baud = fmt.Sprint(r.baud)
		}
		if len(r.fits) == 0 {
			none := "none of the known profiles"
			if r.answered > 0 {
				none = fmt.Sprintf("none: %d answer, with no plausible value", r.answered)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t\t\n", r.unit, baud, r.how, none)
			continue
		}
		for i, f := range r.fits {
			var vals []string
			for _, row := range f.rows {
				vals = append(vals, fmt.Sprintf("%s %.6g%s", row.Metric, row.Value, unitSuffix(row.Unit)))
			}
			if i == 0 {
				fmt.Fprintf(tw, "%d\t%s\t%s\t", r.unit, baud, r.how)
			} else {
				fmt.Fprint(tw, "\t\t\t")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", f.p.Model, f.ev, strings.Join(vals, ", "))
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRanked by the values first: fewest implausible (out of range, a sentinel, NaN, a float such as 4e-37), "+
		"then most plausible (in range, finite; all-zero registers count for nothing); then the factory baud rate and "+
		"address. Check the values against the site before choosing.")
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " " + u
}
