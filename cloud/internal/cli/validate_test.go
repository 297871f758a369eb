package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `validate` checks the early-warning rules as the engine will load them:
// a copy of a pack rule is refused with both places named (exit 3), a
// tuning is accepted and said.
func TestValidateChecksRules(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, rules string
		code        int
		want        string
	}{
		{"copy of a pack rule", `rules:
  - id: my_hypoxia
    kind: threshold
    standard: "GB 3097-1997"
    select: {profile: [generic/met-buoy-gmx500-awac]}
    input: {metric: dissolved_oxygen}
    levels: [{severity: red, op: "<", set: 2.5}]
`, ExitConfig, "means the same as rule ocean_hypoxia at packs/ocean.yaml:"},
		{"tuning of a pack rule", `rules:
  - tunes: ocean_hypoxia
    overrides: [{site: bay-3, levels: {orange: {set: 3.5, clear: 3.8}}}]
`, ExitOK, "tunes rule ocean_hypoxia"},
		{"tuning of no rule", "rules:\n  - tunes: ocean_hypoxa\n    disabled: true\n", ExitConfig, `tunes: there is no rule "ocean_hypoxa"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rules := write("rules.yaml", c.rules)
			cfg := write("cloud.yaml", "alerting:\n  rules: "+rules+"\n")
			code, out, errs := runCLI("validate", "-c", cfg, "-data", t.TempDir())
			if code != c.code || !strings.Contains(out+errs, c.want) {
				t.Fatalf("exit %d, want %d; output does not say %q:\n%s%s", code, c.code, c.want, out, errs)
			}
		})
	}
}
