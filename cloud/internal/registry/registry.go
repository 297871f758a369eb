// Package registry keeps the cloud's picture of the field: every gateway
// (station) with its site, location, online state and devices, and every
// device with its expected interval, last reading and latest values.
//
// It learns from two sources: the gateways' retained state messages (online
// or offline, what they poll and how often) and the batches they send. After
// a restart it is seeded from the store's latest samples and from the
// retained states the broker replays.
package registry

import (
	"sort"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Station states.
const (
	Online  = "online"
	Offline = "offline"
	Unknown = "unknown"
)

// Device states, as judged by the cloud.
const (
	DeviceOK      = "ok"      // reported within its expected interval
	DeviceLate    = "late"    // no reading for more than 3 intervals
	DeviceFailing = "failing" // its gateway says it does not answer
	DeviceUnknown = "unknown" // its gateway is offline, or it never reported
)

// lateAfter is how many expected intervals may pass without a reading before
// a device is late; defaultInterval is assumed when the gateway did not say.
const (
	lateAfter       = 3
	defaultInterval = time.Minute
)

// DefaultMaxDevices is how many devices the registry tracks per gateway
// unless told otherwise (SetMaxDevices). A gateway polls at most a few
// hundred Modbus units (247 per bus, a handful of buses) and stream
// devices; an MQTT source (LoRaWAN) may bring more, so this leaves ample
// room while a gateway cannot make the registry grow without bound.
const DefaultMaxDevices = 1024

// Registry is safe for concurrent use.
type Registry struct {
	now        func() time.Time
	mu         sync.RWMutex
	gws        map[string]*gateway
	maxDevices int
}

type gateway struct {
	id, site string
	// name and siteName are the display names its state gave.
	name, siteName string
	location       *telemetry.Location
	state          string // Online, Offline or Unknown (no state message yet)
	version        string
	config         *telemetry.ConfigState // nil: the gateway does not say (older than issue 17)
	update         *telemetry.UpdateState // nil: the gateway does not say (older, or updates off)
	stateAt        time.Time
	started        time.Time
	buffered       uint64
	lastSeen       time.Time // newest batch stored
	// heardAt is when the gateway itself last spoke: a batch arrived (stored
	// or not) or it published its state (a retained state replayed by the
	// broker, or a last will, is not the gateway speaking). heartbeat is how
	// often it says it publishes its state.
	heardAt   time.Time
	heartbeat time.Duration
	devices   map[string]*device
	inv       inventory     // what the newest online state said for the inventory
	events    []store.Event // the newest events, newest last, at most recentEvents
	// refused counts device ids not tracked because the gateway already
	// had maxDevices; future counts the items dropped for being stamped
	// too far ahead of the cloud's clock (ingest). Both since the start.
	refused, future uint64
}

// recentEvents is how many events a station remembers for the dashboard.
const recentEvents = 50

type device struct {
	id, profile string
	bus, port   string             // the line it shares with other devices, as its gateway said
	mooring     *telemetry.Mooring // a buoy's anchor and radius, as its gateway said
	interval    time.Duration      // as the gateway declared; 0 if it did not
	quiet       bool               // talks only when something happens (a reader)
	learned     time.Duration      // the pace seen in its readings, when not declared
	health      string             // from the gateway
	healthSince time.Time          // when health last changed (wall time)
	errMsg      string
	lastSeen    time.Time // newest acquisition time stored
	lastArrived time.Time // newest acquisition time that reached the cloud, stored or not
	lastRead    time.Time // newest acquisition time at the gateway, as its state says
	latest      map[string]store.Sample
	events      uint64 // events received
}

// New returns an empty registry.
func New() *Registry { return NewWithClock(time.Now) }

// NewWithClock returns an empty registry that reads the time from now
// (tests and rule cases run on a clock of their own).
func NewWithClock(now func() time.Time) *Registry {
	return &Registry{now: now, gws: map[string]*gateway{}, maxDevices: DefaultMaxDevices}
}

// SetMaxDevices bounds the devices tracked per gateway (n ≥ 1). Devices
// already tracked stay; a new device of a gateway at the bound is not
// tracked (its readings are still stored), and counted.
func (r *Registry) SetMaxDevices(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maxDevices = max(n, 1)
}

func (r *Registry) gw(id string) *gateway {
	g, ok := r.gws[id]
	if !ok {
		g = &gateway{id: id, state: Unknown, devices: map[string]*device{}}
		r.gws[id] = g
	}
	return g
}

// dev returns the gateway's device id, adding it if the gateway has fewer
// than max devices; nil (counted in g.refused) if it has not.
func (g *gateway) dev(id string, max int) *device {
	d, ok := g.devices[id]
	if !ok {
		if len(g.devices) >= max {
			g.refused++
			return nil
		}
		d = &device{id: id, latest: map[string]store.Sample{}}
		g.devices[id] = d
	}
	return d
}

// ObserveState records a gateway's state message. retained says the broker
// replayed it from its store (at subscribe): it describes the gateway but
// is no sign that the gateway is speaking now. It returns how many of the
// message's devices were not tracked because the gateway is at the bound
// (SetMaxDevices).
func (r *Registry) ObserveState(gw string, s telemetry.State, retained bool) (refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	g := r.gw(gw)
	if !retained && s.State != telemetry.StateOffline {
		g.heardAt = now // it spoke, whatever its clock says
	}
	if !s.Time.IsZero() && s.Time.Before(g.stateAt) {
		return 0 // an older message (e.g. a retained one replayed late, or a clock stepped back)
	}
	g.state, g.stateAt = s.State, s.Time
	if g.stateAt.IsZero() {
		g.stateAt = now
	}
	if s.Site != "" {
		g.site = s.Site
	}
	if s.State == telemetry.StateOffline {
		return 0 // a last will carries no description, and is the broker speaking
	}
	g.version, g.started, g.buffered, g.heartbeat = s.Version, s.Started, s.Buffered, time.Duration(s.Heartbeat)
	g.name, g.siteName = s.Name, s.SiteName
	g.config = copyConfig(s.Config)
	g.update = copyUpdate(s.Update)
	g.inv = inventoryOf(s)
	if s.Location != nil {
		loc := *s.Location
		g.location = &loc
	}
	for _, ds := range s.Devices {
		d := g.dev(ds.ID, r.maxDevices)
		if d == nil {
			refused++
			continue
		}
		if ds.Health != d.health || d.healthSince.IsZero() {
			d.healthSince = now
		}
		d.profile, d.interval, d.health, d.errMsg, d.quiet = ds.Profile, time.Duration(ds.Interval), ds.Health, ds.Error, ds.Quiet
		d.bus, d.port = ds.Bus, ds.Port
		d.mooring = nil
		if ds.Mooring != nil {
			m := *ds.Mooring
			d.mooring = &m
		}
		if ds.LastRead.After(d.lastRead) {
			d.lastRead = ds.LastRead
		}
	}
	return refused
}

// Heard records that a batch arrived from a gateway, before it is stored:
// the gateway spoke, and its devices acquired what the batch holds. A store
// that is slow or down does not make the field look silent.
func (r *Registry) Heard(b *telemetry.Batch) (refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.gw(b.Gateway)
	now := r.now()
	g.heardAt = now
	devs := r.devices(g)
	for i := range b.Readings {
		rd := &b.Readings[i]
		if d := devs.get(rd.Device); d != nil {
			if t := evidenceTime(rd.Time, rd.Clock, now); t.After(d.lastArrived) {
				d.lastArrived = t
			}
		}
	}
	for i := range b.Events {
		if e := &b.Events[i]; e.Acquired() {
			if d := devs.get(e.Device); d != nil {
				if t := evidenceTime(e.Time, e.Clock, now); t.After(d.lastArrived) {
					d.lastArrived = t
				}
			}
		}
	}
	return devs.refused
}

// batchDevices looks up the devices of one batch, remembering the last
// one and those refused, so a batch counts each refused device once.
type batchDevices struct {
	g       *gateway
	max     int
	last    *device
	no      map[string]bool
	refused int
}

func (r *Registry) devices(g *gateway) *batchDevices { return &batchDevices{g: g, max: r.maxDevices} }

func (b *batchDevices) get(id string) *device {
	if b.last != nil && b.last.id == id {
		return b.last
	}
	if b.no[id] {
		return nil
	}
	if d, ok := b.g.devices[id]; ok {
		b.last = d
		return d
	}
	if d := b.g.dev(id, b.max); d != nil {
		b.last = d
		return d
	}
	if b.no == nil {
		b.no = map[string]bool{}
	}
	b.no[id] = true
	b.refused++
	return nil
}

// evidenceTime is when an acquisition shows its device alive: its time,
// unless its clock was not set (1970 after a boot without RTC: it arrived
// just now, so it was acquired lately) or runs ahead of ours (a future time
// would keep the device alive for ever).
func evidenceTime(t time.Time, c telemetry.ClockQuality, now time.Time) time.Time {
	if c == telemetry.ClockUnsynced || t.After(now) {
		return now
	}
	return t
}

// ObserveBatch records a stored batch: the gateway was heard from, and its
// devices' latest values move forward (never back: a replay or a backlog
// does not hide newer values). It returns how many of the batch's devices
// were not tracked because the gateway is at the bound (their readings are
// stored all the same).
func (r *Registry) ObserveBatch(b *telemetry.Batch) (refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.gw(b.Gateway)
	g.lastSeen = r.now()
	if b.Site != "" {
		g.site = b.Site
	}
	devs := r.devices(g)
	for _, rd := range b.Readings {
		d := devs.get(rd.Device)
		if d == nil {
			continue
		}
		if rd.Time.After(d.lastSeen) {
			if !d.lastSeen.IsZero() {
				d.learn(rd.Time.Sub(d.lastSeen))
			}
			d.lastSeen = rd.Time
		}
		if cur, ok := d.latest[rd.Metric]; ok && !rd.Time.After(cur.Time) {
			continue
		}
		sm := store.Sample{Gateway: b.Gateway, Site: b.Site, Device: rd.Device, Metric: rd.Metric, Unit: rd.Unit,
			Time: rd.Time, Quality: rd.Quality}
		if v := rd.Value; v == v && v-v == 0 { // finite
			sm.Value = &v
		}
		d.latest[rd.Metric] = sm
	}
	for _, e := range b.Events {
		if e.Device != b.Gateway { // the gateway's own events (gap, clock, buffer) are not a device's
			if d := devs.get(e.Device); d != nil {
				d.events++
				if e.Acquired() && e.Time.After(d.lastSeen) {
					d.lastSeen = e.Time // a tag read shows the reader alive; a quarantine event does not
				}
			}
		}
		g.addEvent(store.Event{Gateway: b.Gateway, Site: b.Site, Device: e.Device, Kind: e.Kind, Key: e.Key, Time: e.Time,
			Attrs: e.Attrs, Values: e.Values})
	}
	return devs.refused
}

// DroppedFuture counts n items of gateway gw dropped by the ingestor for
// being stamped too far ahead of the cloud's clock.
func (r *Registry) DroppedFuture(gw string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gw(gw).future += uint64(n)
}

// learn follows the pace of a device whose gateway did not declare one (a
// LoRaWAN sensor behind an MQTT source, an NDBC feed): the gap between its
// newest readings, remembered as a slowly decaying maximum so that one
// quick retransmission does not make it look late.
func (d *device) learn(gap time.Duration) {
	d.learned = max(gap, d.learned-d.learned/8)
}

// addEvent remembers e, replacing an earlier version of the same event.
func (g *gateway) addEvent(e store.Event) {
	for i, old := range g.events {
		if old.Device == e.Device && old.Kind == e.Kind && old.Key == e.Key && old.Time.Equal(e.Time) {
			g.events[i] = e
			return
		}
	}
	g.events = append(g.events, e)
	sort.SliceStable(g.events, func(i, j int) bool { return g.events[i].Time.Before(g.events[j].Time) })
	if len(g.events) > recentEvents {
		g.events = g.events[len(g.events)-recentEvents:]
	}
}

// Seed loads latest samples from the store after a restart.
func (r *Registry) Seed(samples []store.Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sm := range samples {
		g := r.gw(sm.Gateway)
		if sm.Site != "" && g.site == "" {
			g.site = sm.Site
		}
		d := g.dev(sm.Device, r.maxDevices)
		if d == nil {
			continue
		}
		if cur, ok := d.latest[sm.Metric]; !ok || sm.Time.After(cur.Time) {
			d.latest[sm.Metric] = sm
		}
		if sm.Time.After(d.lastSeen) {
			d.lastSeen = sm.Time
		}
	}
}

// Station is the registry's view of one gateway, for the API and the page.
type Station struct {
	ID       string              `json:"id"`
	Site     string              `json:"site,omitempty"`
	Name     string              `json:"name,omitempty"`      // display name, any language
	SiteName string              `json:"site_name,omitempty"` // the site's display name
	Location *telemetry.Location `json:"location,omitempty"`
	State    string              `json:"state"` // online, offline, unknown
	Version  string              `json:"version,omitempty"`
	Started  time.Time           `json:"started,omitzero"`
	Since    time.Time           `json:"state_since,omitzero"`
	LastSeen time.Time           `json:"last_seen,omitzero"`
	Buffered uint64              `json:"buffered"`
	Devices  []Device            `json:"devices"`
	// Events are the station's newest events (tag reads, drift), newest first.
	Events []store.Event `json:"events"`
	// DevicesRefused counts device ids not tracked because the station
	// already had the most devices the registry keeps per gateway;
	// FutureItems counts the items the ingestor dropped for being stamped
	// too far ahead of the cloud's clock. Both since the cloud started.
	DevicesRefused uint64 `json:"devices_refused,omitempty"`
	FutureItems    uint64 `json:"future_items,omitempty"`
	// Config is the configuration the gateway says it runs: remote
	// version, last remote config error, last rollback (docs/fleet.md).
	// Absent for gateways older than issue 17.
	Config *telemetry.ConfigState `json:"config,omitempty"`
	// Update is the gateway's binary updates: the release pending, the
	// last error and rollback (docs/fleet.md, Binary updates); absent when
	// the gateway does not take them.
	Update *telemetry.UpdateState `json:"update,omitempty"`
}

// Device is the registry's view of one device.
type Device struct {
	ID       string         `json:"id"`
	Profile  string         `json:"profile,omitempty"`
	Bus      string         `json:"bus,omitempty"`  // the shared line it is on
	Port     string         `json:"port,omitempty"` // that line's port or endpoint
	Interval string         `json:"interval,omitempty"`
	State    string         `json:"state"` // ok, late, failing, unknown
	Error    string         `json:"error,omitempty"`
	LastSeen time.Time      `json:"last_seen,omitzero"`
	Latest   []store.Sample `json:"latest"`
	// Location is where the device is, for devices that know (a buoy's GNSS
	// fix from its latitude and longitude readings).
	Location *telemetry.Location `json:"location,omitempty"`
	Events   uint64              `json:"events,omitempty"` // events received since the cloud started
	// Mooring is a moored buoy's anchor and watch-circle radius, as its
	// gateway's state says (absent from older gateways).
	Mooring *telemetry.Mooring `json:"mooring,omitempty"`
}

// Stations returns every station, sorted by id.
func (r *Registry) Stations() []Station {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Station, 0, len(r.gws))
	for _, g := range r.gws {
		out = append(out, r.view(g))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Station returns one station.
func (r *Registry) Station(id string) (Station, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	g, ok := r.gws[id]
	if !ok {
		return Station{}, false
	}
	return r.view(g), true
}

func (r *Registry) view(g *gateway) Station {
	now := r.now()
	st := Station{ID: g.id, Site: g.site, Name: g.name, SiteName: g.siteName, State: g.state, Version: g.version, Config: copyConfig(g.config), Update: copyUpdate(g.update), Started: g.started, Since: g.stateAt,
		LastSeen: g.lastSeen, Buffered: g.buffered, Devices: make([]Device, 0, len(g.devices)),
		DevicesRefused: g.refused, FutureItems: g.future}
	if g.location != nil {
		loc := *g.location
		st.Location = &loc
	}
	st.State = g.stateNow(now)
	for _, d := range g.devices {
		dv := Device{ID: d.id, Profile: d.profile, Bus: d.bus, Port: d.port, LastSeen: d.lastSeen, Error: d.errMsg, Events: d.events,
			Latest: make([]store.Sample, 0, len(d.latest))}
		if d.mooring != nil {
			m := *d.mooring
			dv.Mooring = &m
		}
		lat, okLat := d.latest["latitude"]
		lon, okLon := d.latest["longitude"]
		if okLat && okLon && lat.Value != nil && lon.Value != nil {
			dv.Location = &telemetry.Location{Lat: *lat.Value, Lon: *lon.Value}
		}
		if d.interval > 0 {
			dv.Interval = d.interval.String()
		}
		for _, sm := range d.latest {
			dv.Latest = append(dv.Latest, sm)
		}
		sort.Slice(dv.Latest, func(i, j int) bool { return dv.Latest[i].Metric < dv.Latest[j].Metric })
		dv.State = deviceState(st.State, d, now)
		st.Devices = append(st.Devices, dv)
	}
	sort.Slice(st.Devices, func(i, j int) bool { return st.Devices[i].ID < st.Devices[j].ID })
	st.Events = make([]store.Event, 0, len(g.events))
	for i := len(g.events) - 1; i >= 0; i-- {
		st.Events = append(st.Events, g.events[i])
	}
	return st
}

// stateNow is the gateway's state, counting recent data without a state
// message (an older gateway) as online.
func (g *gateway) stateNow(now time.Time) string {
	if g.state == Unknown && !g.lastSeen.IsZero() && now.Sub(g.lastSeen) < 5*time.Minute {
		return Online
	}
	return g.state
}

func deviceState(station string, d *device, now time.Time) string {
	if station == Offline {
		return DeviceUnknown // we cannot know; the gateway's alert covers it
	}
	if d.health == "failing" {
		return DeviceFailing
	}
	if d.quiet {
		if d.health == "ok" {
			return DeviceOK
		}
		return DeviceUnknown
	}
	if d.lastSeen.IsZero() {
		return DeviceUnknown
	}
	iv := d.interval
	if iv <= 0 {
		iv = max(defaultInterval, d.learned)
	}
	if now.Sub(d.lastSeen) > lateAfter*iv+5*time.Second {
		return DeviceLate
	}
	return DeviceOK
}

// Expected is a device the cloud expects to hear from, for no-data alerts:
// declared by its gateway or seen in its data (after a restart, in the
// store). Quiet devices (readers) talk only when something happens.
type Expected struct {
	Gateway, Site, Device, Profile string
	Bus, Port                      string        // the shared line it is on, if its gateway said
	Interval                       time.Duration // declared, else learned, else a minute
	Quiet                          bool
	// Health is the gateway's word (ok, failing, quarantined, unknown),
	// since HealthSince (wall time); Error its last error.
	Health      string
	HealthSince time.Time
	Error       string
	// LastSeen is the newest acquisition time of what exists: stored,
	// arrived but not yet stored, or acquired at the gateway as its state
	// says. Zero if it never reported.
	LastSeen time.Time
}

// GatewayView is a gateway's connection state, for offline alerts.
type GatewayView struct {
	ID, Site string
	State    string // online, offline, unknown
	Since    time.Time
	// HeardAt is when the gateway itself last spoke (a batch or a state
	// message, wall time); Heartbeat how often it promised to.
	HeardAt   time.Time
	Heartbeat time.Duration
}

// Expected lists every known device.
func (r *Registry) Expected() ([]GatewayView, []Expected) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	var gws []GatewayView
	var out []Expected
	for _, g := range r.gws {
		gws = append(gws, GatewayView{ID: g.id, Site: g.site, State: g.stateNow(now), Since: g.stateAt,
			HeardAt: g.heardAt, Heartbeat: g.heartbeat})
		for _, d := range g.devices {
			iv := d.interval
			if iv <= 0 {
				iv = max(defaultInterval, d.learned)
			}
			out = append(out, Expected{Gateway: g.id, Site: g.site, Device: d.id, Profile: d.profile, Bus: d.bus,
				Port: d.port, Interval: iv, Quiet: d.quiet, Health: d.health, HealthSince: d.healthSince, Error: d.errMsg,
				LastSeen: latest(d.lastSeen, d.lastArrived, d.lastRead)})
		}
	}
	return gws, out
}

// Names returns the display names gateway gw's state gave for itself and
// its site ("" when it gave none).
func (r *Registry) Names(gw string) (name, siteName string) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if g, ok := r.gws[gw]; ok {
		return g.name, g.siteName
	}
	return "", ""
}

// Profile returns a device's profile, "" if its gateway did not say.
func (r *Registry) Profile(gw, dev string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if g, ok := r.gws[gw]; ok {
		if d, ok := g.devices[dev]; ok {
			return d.profile
		}
	}
	return ""
}

func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}

// copyConfig is a deep copy of c, so that no caller shares the registry's.
func copyUpdate(u *telemetry.UpdateState) *telemetry.UpdateState {
	if u == nil {
		return nil
	}
	uu := *u
	if u.Rollback != nil {
		rb := *u.Rollback
		uu.Rollback = &rb
	}
	return &uu
}

func copyConfig(c *telemetry.ConfigState) *telemetry.ConfigState {
	if c == nil {
		return nil
	}
	cc := *c
	if c.Rollback != nil {
		rb := *c.Rollback
		cc.Rollback = &rb
	}
	return &cc
}
