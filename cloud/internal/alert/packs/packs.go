// Package packs holds the early-warning rule packs shipped with the cloud,
// one YAML file per domain (agriculture, environment, ocean) and one for
// the monitoring system's own health (operations), embedded in
// the binary. docs/rule-packs.md lists their rules, levels, sources and
// caveats.
//
// The rules are monitoring early warnings to bureaus, derived from sensors;
// they are not official public warning signals. Numbers marked (V) in a
// rule's caveat are to be checked against the primary text before a bureau
// relies on them.
package packs

import (
	"embed"
	"fmt"
	"slices"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
)

//go:embed *.yaml
var files embed.FS

var names = []string{"agriculture", "environment", "ocean", "operations"}

// Names lists the packs.
func Names() []string { return slices.Clone(names) }

// Load parses and validates one pack; errors name "packs/<name>.yaml", the
// line and the field.
func Load(name string) ([]rules.Rule, error) {
	if !slices.Contains(names, name) {
		return nil, fmt.Errorf("no rule pack %q (packs: %v)", name, names)
	}
	data, err := files.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("rule pack %s: %w", name, err)
	}
	return rules.Parse("packs/"+name+".yaml", data)
}

// All loads every pack and checks that rule ids are unique across them.
func All() ([]rules.Rule, error) {
	var all []rules.Rule
	for _, n := range names {
		rs, err := Load(n)
		if err != nil {
			return nil, err
		}
		all = append(all, rs...)
	}
	if err := rules.Check(all); err != nil {
		return nil, err
	}
	return all, nil
}
