package registry

import (
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// inventory is what a gateway's newest online state said that the
// inventory shows and the rest of the registry does not keep.
type inventory struct {
	arch           string
	labels         map[string]string
	uptime         time.Duration // as of stateTime; -1: the gateway did not say
	stateTime      time.Time     // the state's own time (the gateway's clock)
	bufferBytes    int64
	bufferMaxBytes int64
	clock          *telemetry.ClockState
	devices        int // declared in the state
	faulty         int // of them, failing or quarantined by the gateway's word
	described      bool
}

func inventoryOf(s telemetry.State) inventory {
	inv := inventory{arch: s.Arch, labels: maps.Clone(s.Labels), uptime: time.Duration(s.Uptime), stateTime: s.Time,
		bufferBytes: s.BufferBytes, bufferMaxBytes: s.BufferMaxBytes, devices: len(s.Devices), described: true}
	if s.Uptime == 0 {
		inv.uptime = -1
		if !s.Started.IsZero() && !s.Time.Before(s.Started) {
			inv.uptime = s.Time.Sub(s.Started) // an older gateway: from its own two times
		}
	}
	if s.Clock != nil {
		c := *s.Clock
		inv.clock = &c
	}
	for _, d := range s.Devices {
		if d.Health == "failing" || d.Health == "quarantined" {
			inv.faulty++
		}
	}
	return inv
}

// staleAfter is how many heartbeats an online gateway may miss, plus
// staleSlack, before the inventory marks it stale (as the offline alert
// judges "not responding").
const (
	staleAfter = 2
	staleSlack = 5 * time.Second
)

// InventoryRow is one gateway in the inventory (GET /api/v1/inventory).
type InventoryRow struct {
	ID       string            `json:"id"`
	Site     string            `json:"site,omitempty"`
	Name     string            `json:"name,omitempty"`
	SiteName string            `json:"site_name,omitempty"`
	Labels   map[string]string `json:"labels"`
	Version  string            `json:"version,omitempty"`
	Arch     string            `json:"arch,omitempty"`
	// ConfigVersion is the remote configuration it runs (0: its local
	// file), ConfigSource local or remote; absent from gateways older than
	// issue 17.
	ConfigVersion *uint64 `json:"config_version,omitempty"`
	ConfigSource  string  `json:"config_source,omitempty"`
	// Update is the gateway release pending, with its phase: "1.6.0
	// downloading 40%", "1.6.0 waiting" (for the update window), "1.6.0
	// trying"; absent when none is (docs/fleet.md, Binary updates).
	Update string `json:"update,omitempty"`
	// UptimeS is how long the gateway process had run at StateTime (its
	// newest state message, every heartbeat); absent when it did not say.
	UptimeS   *int64    `json:"uptime_s,omitempty"`
	Started   time.Time `json:"started,omitzero"`
	StateTime time.Time `json:"state_time,omitzero"`
	// LastSeen is when the cloud last heard from it: a state message or a
	// batch (the cloud's clock).
	LastSeen time.Time `json:"last_seen,omitzero"`
	State    string    `json:"state"` // online, offline, unknown
	// Stale marks an online gateway heard from by neither state nor data
	// for more than two heartbeats: not responding, whatever its
	// connection says. Not judged before the cloud first hears it after
	// its start (a retained state is not the gateway speaking).
	Stale          bool   `json:"stale"`
	Backlog        uint64 `json:"backlog"` // readings and events waiting for the cloud's ack
	BufferBytes    int64  `json:"buffer_bytes,omitempty"`
	BufferMaxBytes int64  `json:"buffer_max_bytes,omitempty"`
	// ClockQuality is ntp, gps, rtc or unsynced; ClockOffsetS and
	// ClockMaxErrorS the kernel's, for an NTP-disciplined clock.
	ClockQuality   string   `json:"clock_quality,omitempty"`
	ClockOffsetS   *float64 `json:"clock_offset_s,omitempty"`
	ClockMaxErrorS *float64 `json:"clock_max_error_s,omitempty"`
	Devices        int      `json:"devices"`
	FaultyDevices  int      `json:"faulty_devices"`
}

// InventoryFilter selects rows: every label given (AND), the site, the
// state (online, offline or unknown). Zero values select everything.
type InventoryFilter struct {
	Labels map[string]string
	Site   string
	State  string
}

func (f InventoryFilter) match(row *InventoryRow) bool {
	if f.Site != "" && row.Site != f.Site || f.State != "" && row.State != f.State {
		return false
	}
	for k, v := range f.Labels {
		if got, ok := row.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Inventory returns the gateways that f selects, sorted by id.
func (r *Registry) Inventory(f InventoryFilter) []InventoryRow {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	out := []InventoryRow{}
	for _, g := range r.gws {
		row := g.inventoryRow(now)
		if f.match(&row) {
			out = append(out, row)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (g *gateway) inventoryRow(now time.Time) InventoryRow {
	inv := &g.inv
	row := InventoryRow{ID: g.id, Site: g.site, Name: g.name, SiteName: g.siteName, Labels: maps.Clone(inv.labels),
		Version: g.version, Arch: inv.arch, Started: g.started, StateTime: inv.stateTime, LastSeen: latest(g.heardAt, g.lastSeen),
		State: g.stateNow(now), Backlog: g.buffered, BufferBytes: inv.bufferBytes, BufferMaxBytes: inv.bufferMaxBytes,
		Devices: inv.devices, FaultyDevices: inv.faulty}
	if row.Labels == nil {
		row.Labels = map[string]string{}
	}
	if c := g.config; c != nil {
		v := c.Version
		row.ConfigVersion, row.ConfigSource = &v, c.Source
	}
	if u := g.update; u != nil && u.Pending != "" {
		row.Update = u.Pending + " " + u.Phase
		if u.Phase == "downloading" && u.Size > 0 {
			row.Update += fmt.Sprintf(" %d%%", u.Downloaded*100/u.Size)
		}
	}
	if inv.uptime >= 0 && inv.described {
		s := int64(inv.uptime / time.Second)
		row.UptimeS = &s
	}
	if c := inv.clock; c != nil {
		row.ClockQuality = c.Quality
		row.ClockOffsetS, row.ClockMaxErrorS = copyFloat(c.OffsetS), copyFloat(c.MaxErrorS)
	}
	if !inv.described { // no state yet (seeded from the store, or an older gateway's data): what the data showed
		row.Devices = len(g.devices)
	}
	if row.State == Online && g.heartbeat > 0 && !row.LastSeen.IsZero() && now.Sub(row.LastSeen) > staleAfter*g.heartbeat+staleSlack {
		row.Stale = true
	}
	return row
}

func copyFloat(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
