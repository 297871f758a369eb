package config

import (
	"net/url"
	"slices"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/notify"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// Alerting is the early-warning engine and its notifications.
type Alerting struct {
	Disabled bool `yaml:"disabled"`
	// Packs are the built-in rule packs to run (agriculture, environment,
	// ocean); default all. A rule only judges series whose metric it
	// names.
	Packs []string `yaml:"packs"`
	// Rules is a rule file, or a directory of *.yaml rule files, run beside
	// the packs (a rule id must be unique across both).
	Rules string `yaml:"rules"`
	// LateAfter is how old a reading may be and still page at once; alerts
	// from older data (a backlog) page only if still firing once settled.
	LateAfter time.Duration `yaml:"late_after"`
	// GatewayOffline alerts on a gateway that went offline and mutes its
	// devices' alerts; DeviceSilent alerts on a device silent for After ×
	// its interval.
	GatewayOffline Builtin `yaml:"gateway_offline"`
	DeviceSilent   Builtin `yaml:"device_silent"`
	// BusDown alerts once for a bus whose devices are all silent while
	// their gateway is heard (a cut RS485 cable); its severity is the
	// highest of its devices' silence alerts unless set.
	BusDown Builtin `yaml:"bus_down"`
	// CloudIntake alerts when the cloud itself cannot hear the field: its
	// broker connection lost, its store writes stalled.
	CloudIntake Builtin `yaml:"cloud_intake"`
	// ExternalURL is this dashboard's address as receivers should link to
	// it (default http://<http.listen>/).
	ExternalURL string `yaml:"external_url"`
	// Notify is where alerts go: receivers, grouping, repeats
	// (docs/notifications.md).
	Notify notify.Config `yaml:"notify"`
}

// Builtin configures a built-in alert.
type Builtin struct {
	Disabled bool           `yaml:"disabled"`
	Severity alert.Severity `yaml:"severity"`
	For      time.Duration  `yaml:"for"`
	After    float64        `yaml:"after"`
}

// PackNames are the built-in rule packs.
var PackNames = []string{"agriculture", "environment", "ocean", "operations"}

func defaultAlerting() Alerting {
	return Alerting{Packs: slices.Clone(PackNames), LateAfter: 10 * time.Minute,
		GatewayOffline: Builtin{Severity: alert.Orange, For: time.Minute},
		DeviceSilent:   Builtin{Severity: alert.Blue, After: 3}, CloudIntake: Builtin{Severity: alert.Orange, For: time.Minute},
		Notify: notify.DefaultConfig()}
}

func (a *Alerting) validate(r *yamlconf.Report) {
	for i, p := range a.Packs {
		if !slices.Contains(PackNames, p) {
			r.Errorf(yamlconf.Join("alerting", "packs", i), "%q is not a rule pack (agriculture, environment, ocean, operations)", p)
		}
	}
	if a.LateAfter <= 0 {
		r.Errorf("alerting.late_after", "must be positive")
	}
	if a.DeviceSilent.After < 0 {
		r.Errorf("alerting.device_silent.after", "must not be negative")
	}
	for name, b := range map[string]Builtin{"gateway_offline": a.GatewayOffline, "device_silent": a.DeviceSilent,
		"bus_down": a.BusDown, "cloud_intake": a.CloudIntake} {
		if b.For < 0 {
			r.Errorf("alerting."+name+".for", "must not be negative")
		}
		if b.After != 0 && name != "device_silent" {
			r.Errorf("alerting."+name+".after", "does not apply: only device_silent counts intervals (use for)")
		}
	}
	a.Notify.ValidateAt(r, "alerting.notify")
	if a.ExternalURL != "" {
		if u, err := url.Parse(a.ExternalURL); err != nil || u.Host == "" {
			r.Errorf("alerting.external_url", "%q is not a URL", a.ExternalURL)
		}
	}
}
