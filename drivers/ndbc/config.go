package ndbc

import (
	"fmt"
	"strings"
	"time"
)

// Config is the ndbc section of a device profile.
type Config struct {
	// Columns, when not empty, is an allow-list of NDBC column names
	// (WDIR, WSPD, GST, WVHT, DPD, APD, MWD, PRES, ATMP, WTMP, DEWP, VIS,
	// PTDY, TIDE); the other columns give no readings.
	Columns []string `yaml:"columns"`
	// Backfill limits how far back from the arrival time rows are emitted,
	// e.g. "24h" so that the first poll does not replay 45 days; 0 emits
	// every new row.
	Backfill time.Duration `yaml:"backfill"`
}

// ColumnNames returns the data column names of the standard
// meteorological format, in file order.
func ColumnNames() []string {
	var names []string
	for _, c := range columns() {
		names = append(names, c.name)
	}
	return names
}

// Normalize puts column names in upper case.
func (c *Config) Normalize() {
	for i, s := range c.Columns {
		c.Columns[i] = strings.ToUpper(strings.TrimSpace(s))
	}
}

// Check reports what is wrong with a normalized config, as field name →
// message pairs for the caller to place.
func (c *Config) Check() map[string]string {
	bad := map[string]string{}
	known := ColumnNames()
	for _, s := range c.Columns {
		found := false
		for _, k := range known {
			found = found || k == s
		}
		if !found {
			bad["columns"] = fmt.Sprintf("%q is not one of %s", s, strings.Join(known, ", "))
			break
		}
	}
	if c.Backfill < 0 {
		bad["backfill"] = "must not be negative"
	}
	return bad
}
