package cli

import (
	"regexp"
	"strings"
	"testing"
)

// TestFlagArgumentNames renders every command's -h and checks the argument
// name of each flag that takes a value. The flag package takes the first
// back-quoted word of a usage string for it, so a usage that quotes a
// command (`fieldwatch-gateway ports`) shows as "-port fieldwatch-gateway
// ports". Every such name must be one placeholder in capitals (FILE, DEV,
// HOST:PORT), and no back quote may be left in the text.
func TestFlagArgumentNames(t *testing.T) {
	placeholder := regexp.MustCompile(`^[A-Z][A-Z0-9_]*(:[A-Z][A-Z0-9_]*)?$`)
	flagLine := regexp.MustCompile(`^  -([a-z][a-z0-9-]*)(?:[ \t](.*))?$`)
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			_, _, help := run(t, c.name, "-h")
			if strings.Contains(help, "`") {
				t.Errorf("help holds a back quote:\n%s", help)
			}
			flags := 0
			for _, line := range strings.Split(help, "\n") {
				m := flagLine.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				flags++
				arg := m[2]
				if strings.HasPrefix(line, "  -"+m[1]+"\t") {
					arg = "" // a one-letter flag's usage follows a tab: a bool
				}
				if arg == "" {
					continue // a bool: no argument
				}
				if !placeholder.MatchString(arg) {
					t.Errorf("-%s shows its argument as %q, not a placeholder such as FILE or HOST:PORT", m[1], arg)
				}
			}
			if flags == 0 && c.name != "version" {
				t.Errorf("no flags found in:\n%s", help)
			}
		})
	}
}
