package packs

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/engine"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
)

func TestEveryPackParses(t *testing.T) {
	for _, n := range Names() {
		rs, err := Load(n)
		if err != nil {
			t.Errorf("%s:\n%v", n, err)
			continue
		}
		if len(rs) == 0 {
			t.Errorf("%s: no rules", n)
		}
		prefix := map[string]string{"agriculture": "agri_", "environment": "env_", "ocean": "ocean_", "operations": "ops_"}[n]
		for _, r := range rs {
			if !strings.HasPrefix(r.ID, prefix) {
				t.Errorf("%s:%d: rule %s: ids in pack %s start with %q", r.File, r.Line, r.ID, n, prefix)
			}
		}
	}
}

func TestEmbeddedFilesAreThePacks(t *testing.T) {
	got, err := fs.Glob(files, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, n := range Names() {
		want = append(want, n+".yaml")
	}
	if !slices.Equal(got, want) {
		t.Errorf("embedded %v, Names gives %v", got, want)
	}
	if _, err := Load("nosuch"); err == nil {
		t.Error("Load of an unknown pack succeeded")
	}
}

func TestIDsUniqueAcrossPacks(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if err := rules.Check(all); err != nil {
		t.Error(err)
	}
}

var markedV = regexp.MustCompile(`\(V\)`)

// toVerify finds V among a parenthesis's items: "(V)", "(orange, V)",
// "(V, as x)".
var toVerify = regexp.MustCompile(`\((?:[^()]*, )?V(?:, [^()]*)?\)`)

func TestEveryRuleHasSourceCaveatsAndTests(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		at := func(format string, args ...any) {
			t.Helper()
			t.Errorf("%s:%d: rule %s: "+format, append([]any{r.File, r.Line, r.ID}, args...)...)
		}
		if strings.TrimSpace(r.Standard) == "" {
			at("no standard")
		}
		// The console and the Chinese half of every message name the
		// standard in Chinese; a (V) mark must survive translation.
		if strings.TrimSpace(r.StandardCN) == "" {
			at("no standard_cn")
		} else if toVerify.MatchString(r.Standard) != strings.Contains(r.StandardCN, "待核") {
			at("standard is marked (V) but standard_cn does not say 待核, or the other way round")
		}
		if len(r.Tests) == 0 {
			at("no test case")
		}
		for i, tc := range r.Tests {
			if len(tc.Points) == 0 {
				at("tests[%d] %q has no points", i, tc.Name)
			}
		}
		if r.Name == "" || r.Annotations["summary"] == "" || r.Annotations["summary_cn"] == "" {
			at("name, annotations.summary and annotations.summary_cn are required")
		}
		// What to do: the engine ends every description with it ("What to
		// do: …" / "处置：…"), disabled rules included, since a bureau may
		// enable them.
		for _, k := range []string{"runbook", "runbook_cn"} {
			if strings.TrimSpace(r.Annotations[k]) == "" {
				at("annotations.%s is required: one to three sentences saying what the person paged should check and do", k)
			}
		}
		// A (V) number must say so where a bureau reads it: in the caveat.
		if markedV.MatchString(r.Standard) && !markedV.MatchString(r.Annotations["caveat"]) {
			at("the standard is marked (V) but annotations.caveat does not say so")
		}
		if r.Labels["alertname"] == "" {
			at("labels.alertname is required")
		}
	}
}

// Levels name the colours the reference gives each hazard; a spot check
// that the packs did not drift from docs/rule-packs.md.
func TestSpotCheckLevels(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]rules.Rule{}
	for _, r := range all {
		byID[r.ID] = r
	}
	type lv struct {
		sev string
		set float64
	}
	for id, want := range map[string][]lv{
		"agri_rain_3h":          {{"orange", 50}, {"red", 100}},
		"agri_rain_6h":          {{"yellow", 50}},
		"agri_rain_12h":         {{"blue", 50}},
		"agri_heat_max24h":      {{"orange", 37}, {"red", 40}},
		"agri_livestock_thi":    {{"yellow", 75}, {"orange", 79}, {"red", 84}},
		"env_pond_do_low":       {{"yellow", 4}, {"orange", 3}, {"red", 2}},
		"ocean_waves_nearshore": {{"blue", 2.5}, {"yellow", 3.5}, {"orange", 4.5}, {"red", 6}},
		"ocean_hypoxia":         {{"orange", 3}, {"red", 2}},
	} {
		r, ok := byID[id]
		if !ok {
			t.Errorf("rule %s is missing", id)
			continue
		}
		var got []lv
		for _, l := range r.Levels {
			got = append(got, lv{l.Severity.String(), *l.Set})
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s levels %v, want %v", id, got, want)
		}
	}
}

// TestPackCases runs every rule's test cases, disabled rules included,
// through the real engine.
func TestPackCases(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		for _, tc := range r.Tests {
			t.Run(r.ID+"/"+tc.Name, func(t *testing.T) {
				if err := engine.RunCase(r, tc); err != nil {
					t.Errorf("%s:%d: %v", r.File, r.Line, err)
				}
			})
		}
	}
}

// TestPacksResolve: the packs together hold no two rules that mean the
// same thing on overlapping series, and their nodata rules tune the
// built-in DeviceSilent without colliding.
func TestPacksResolve(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	_, notes, err := rules.Resolve(all)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range notes {
		t.Log(n)
	}
}
