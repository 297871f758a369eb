package cli

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
)

func setCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("set", stderr)
	var t target
	t.flags(fs)
	unit := fs.Int("unit", 0, "the unit's address `N` now (default: the profile's factory address)")
	model := fs.String("profile", "", "device profile `MODEL` (it names the settings registers)")
	newUnit := fs.Int("new-unit", 0, "give the unit address `N` (1..247)")
	newBaud := fs.Int("new-baud", 0, "switch the unit to `BAUD`")
	yes := fs.Bool("yes", false, "really write (without it, only say what would be written)")
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
	p, err := t.profile(*model)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	if (*newUnit == 0) == (*newBaud == 0) {
		fmt.Fprintln(stderr, "give one of -new-unit or -new-baud")
		return ExitUsage
	}
	if *unit == 0 {
		*unit = p.Modbus.Defaults.Unit
	}
	baud := t.baud
	if baud == 0 {
		baud = p.Modbus.Defaults.Baud
	}
	s := p.Modbus.Settings
	var setting *profiles.Setting
	var value uint16
	what := ""
	switch {
	case *newUnit != 0:
		if *newUnit < 1 || *newUnit > 247 {
			fmt.Fprintln(stderr, "-new-unit must be 1..247")
			return ExitUsage
		}
		setting, value, what = s.Address, uint16(*newUnit), fmt.Sprintf("address %d → %d", *unit, *newUnit)
	default:
		setting, what = s.Baud, fmt.Sprintf("baud %d → %d", baud, *newBaud)
		if setting != nil {
			if len(setting.Codes) == 0 {
				value = uint16(*newBaud)
			} else if code, ok := setting.Codes[*newBaud]; ok {
				value = code
			} else {
				var bauds []int
				for b := range setting.Codes {
					bauds = append(bauds, b)
				}
				slices.Sort(bauds)
				fmt.Fprintf(stderr, "%s supports the baud rates %v\n", p.Model, bauds)
				return ExitUsage
			}
		}
	}
	if setting == nil {
		fmt.Fprintf(stderr, "the %s profile does not say how to change this setting\n", p.Model)
		return ExitUsage
	}
	fmt.Fprintf(stdout, "%s unit %d on %s: %s: write %d to holding register 0x%04X with FC%02d\n",
		p.Model, *unit, t.describe(baud), what, value, setting.Register, setting.Function)
	if setting.Note != "" {
		fmt.Fprintln(stdout, "note:", setting.Note)
	}
	if !*yes {
		fmt.Fprintln(stdout, "not written: run again with -yes to write it")
		return ExitOK
	}
	c, err := t.client(baud)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	defer c.Close()
	if setting.Function == 16 {
		err = c.WriteRegisters(ctx, uint8(*unit), setting.Register, []uint16{value})
	} else {
		err = c.WriteRegister(ctx, uint8(*unit), setting.Register, value)
	}
	if err != nil && modbus.Kind(err) != "timeout" {
		fmt.Fprintf(stderr, "write failed: %v\n", err)
		return ExitFail
	}
	// Some units switch before they reply; check where the unit answers now.
	checkUnit, checkBaud := *unit, baud
	if *newUnit != 0 {
		checkUnit = *newUnit
	} else {
		checkBaud = *newBaud
	}
	v, err := verifyUnit(ctx, &t, checkBaud, uint8(checkUnit), setting.Register)
	if err != nil {
		fmt.Fprintf(stdout, "written, but the unit does not answer at address %d, %d baud yet: %v\n", checkUnit, checkBaud, err)
		if setting.Note != "" {
			fmt.Fprintln(stdout, "(", setting.Note, ")")
		}
		return ExitFail
	}
	fmt.Fprintf(stdout, "done: the unit answers at address %d, %d baud (register 0x%04X reads %d)\n", checkUnit, checkBaud, setting.Register, v)
	return ExitOK
}

func verifyUnit(ctx context.Context, t *target, baud int, unit uint8, reg uint16) (uint16, error) {
	c, err := t.client(baud)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	words, err := c.ReadRegisters(ctx, unit, modbus.Holding, reg, 1)
	if err != nil {
		return 0, err
	}
	return words[0], nil
}
