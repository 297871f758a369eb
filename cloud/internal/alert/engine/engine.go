// Package engine evaluates early-warning rules on the readings and events
// the cloud receives: one alert instance per rule and series, judged on
// event time, with hysteresis, durations, flapping, silences and
// acknowledgements. Absence is judged per cause (cause.go): a hung gateway,
// a dead bus and a silent device are one alert each, with the devices they
// explain listed inside, and nothing is judged silent while the cloud itself
// cannot hear the field. Its state lives in an SQLite file and survives
// restarts; changes go to a Sink (the notifier) before the data that caused
// them is acknowledged.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"text/template"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/standards"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/trend"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Sink receives alert changes to notify; Update returns once they are
// durable.
type Sink interface {
	Update(ctx context.Context, alerts []alert.Alert) error
}

// Options configure an engine.
type Options struct {
	// Path is the SQLite file of the engine's state; "" keeps it in memory
	// (tests of rules).
	Path     string
	Rules    []rules.Rule
	Registry *registry.Registry
	Sink     Sink // nil: changes are only recorded
	Log      *slog.Logger
	Metrics  *Metrics // nil: not measured
	// LateAfter is how old a reading's time may be and still page at once;
	// older ones (a backlog) are judged, and their alerts published only
	// once the series has settled for Settle (default 10m and 15s).
	LateAfter, Settle time.Duration
	// GatewayOffline is the built-in alert for a gateway that is offline or
	// not responding; its silent devices are listed in it, and once it
	// fires it mutes its devices' alerts.
	GatewayOffline Builtin
	// BusDown is the built-in alert for a bus (a shared RS485 line or
	// serial server) whose devices are all silent while their gateway is
	// heard: one alert for a cut cable, not one per device.
	BusDown Builtin
	// DeviceSilent is the built-in no-data alert of every expected device
	// (quiet devices excepted), after Silence × its interval; nodata rules
	// tune it per selection.
	DeviceSilent Builtin
	Silence      float64
	// CloudIntake is the built-in alert for the cloud itself not hearing
	// the field (Intake unhealthy): its broker connection lost, its store
	// writes stalled.
	CloudIntake Builtin
	// Serves, when set, limits the wall-clock checks (silence, offline) to
	// the gateways this replica holds (serves.go); nil: every gateway.
	Serves Serves
	// Handoff, when set, receives each gateway's state after it is
	// written, for the replica that holds the gateway next (handoff.go).
	Handoff Handoff
	// Intake says whether the cloud hears the field now; nil: always.
	// While it does not, nothing is judged silent, and that time does not
	// count toward any silence (sight.go).
	Intake Intake
	// Tick is how often no-data, silences and settling are checked.
	Tick time.Duration
	// ExternalURL prefixes links to alerts (generatorURL).
	ExternalURL string
	Now         func() time.Time
}

// Builtin configures a built-in rule.
type Builtin struct {
	Disabled bool
	Severity alert.Severity
	For      time.Duration
}

// Engine is safe for concurrent use.
type Engine struct {
	o          Options
	log        *slog.Logger
	m          *Metrics
	db         *db
	rules      []*crule
	byMetric   map[string][]*crule
	aux        map[string]bool // metrics whose newest values rules look up
	gwRule     *crule
	devRule    *crule
	busRule    *crule
	intakeRule *crule
	// tunings are the nodata rules: parameters of devRule per selection;
	// devDefault says whether devRule covers the devices none selects.
	tunings    []*crule
	devDefault bool
	// events are the event rules by event kind; absent those that fire on
	// no events, and absentBy the same by event kind.
	events   map[string][]*crule
	absent   []*crule
	absentBy map[string][]*crule

	mu       sync.Mutex
	series   map[skey]*series
	byFP     map[string]*series
	latest   map[skey]tv // newest aux values: by device (rule -1) and by site (rule -2)
	settling map[*series]bool
	silences []*alert.Silence
	muting   map[string]string // gateway id → fingerprint of its offline alert
	busMute  map[busKey]string // bus → fingerprint of its alert
	// peers are the series of one hazard (alertname) on one device or
	// site: the most severe firing one mutes the others. near are the
	// series of one device's metric, for forecasts superseded by an
	// observed alert.
	peers    map[peerKey][]*series
	near     map[skey][]*series
	evSeries map[*series]bool // series of event rules
	fcSeries map[*series]bool // series of forecast rules
	fitter   trend.Fitter     // forecast fits, under mu
	fits     int              // forecast fits made (benchmarks check them)
	// Sight: when the cloud could not hear the field (sight.go); lastTick
	// (monotonic) and lastTickAt (engine clock) notice a paused process;
	// blind says the intake is down now.
	sight      sight
	lastTick   time.Time
	lastTickAt time.Time
	blind      bool
	mono       func() time.Time // the wall clock a pause shows on (time.Now; tests pause it)
	// downNow and upAt: which gateways are the cause of their devices'
	// silence (as of the last check), and when each last stopped being.
	downNow map[string]bool
	upAt    map[string]time.Time
	// fieldChecked: causes have been judged since the start; until then
	// alerts keep the inhibitions they were saved with.
	fieldChecked bool
	hist         []alert.Transition
	dirty        []*series // changed since the last write
	moved        []*series // windows moved since the last checkpoint
}

// touch queues s to be written with the next flush.
func (e *Engine) touch(s *series) {
	if s.shadowOf == nil && !s.dirty {
		s.dirty = true
		e.dirty = append(e.dirty, s)
	}
}

// moved queues s's window for the next checkpoint.
func (e *Engine) windowMoved(s *series) {
	if s.shadowOf == nil && !s.winDirty {
		s.winDirty = true
		e.moved = append(e.moved, s)
	}
}

type tv struct {
	t time.Time
	v float64
}

// crule is a compiled rule.
type crule struct {
	*rules.Rule
	idx    int32
	table  *standards.Table
	loc    *time.Location
	since  time.Time
	labels map[string]string             // static labels: the rule's, alertname, rule, source
	texts  map[string]*template.Template // annotations that are templates ({{ $value }})
}

const (
	auxDevice = -1
	auxSite   = -2
)

// New builds an engine and loads its state.
func New(o Options) (*Engine, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LateAfter == 0 {
		o.LateAfter = 10 * time.Minute
	}
	if o.Settle == 0 {
		o.Settle = 15 * time.Second
	}
	if o.Tick == 0 {
		o.Tick = 5 * time.Second
	}
	if o.Silence == 0 {
		o.Silence = 3
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{o: o, log: o.Log.With("component", "alerts"), m: o.Metrics, byMetric: map[string][]*crule{},
		aux: map[string]bool{}, series: map[skey]*series{}, byFP: map[string]*series{}, latest: map[skey]tv{},
		settling: map[*series]bool{}, muting: map[string]string{}, busMute: map[busKey]string{},
		events: map[string][]*crule{}, peers: map[peerKey][]*series{}, near: map[skey][]*series{},
		evSeries: map[*series]bool{}, fcSeries: map[*series]bool{}, sight: sight{origin: o.Now()}, mono: time.Now, lastTick: time.Now(),
		lastTickAt: o.Now(), upAt: map[string]time.Time{}, downNow: map[string]bool{},
		absentBy: map[string][]*crule{}}
	rs, notes, err := rules.Resolve(o.Rules)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		e.log.Info(n)
	}
	for i := range rs {
		if rs[i].Disabled {
			continue
		}
		c, err := compile(&rs[i], int32(len(e.rules)))
		if err != nil {
			return nil, err
		}
		e.add(c)
	}
	e.gwRule = e.builtin("gateway_offline", "GatewayOffline", o.GatewayOffline, alert.Orange)
	e.busRule = e.builtin("bus_down", "BusDown", o.BusDown, alert.None)
	dev := o.DeviceSilent
	e.devDefault = !dev.Disabled
	dev.Disabled = dev.Disabled && len(e.tunings) == 0
	e.devRule = e.builtin(rules.BuiltinDeviceSilent, "DeviceSilent", dev, alert.Blue)
	e.intakeRule = e.builtin("cloud_intake", "CloudIntakeDown", o.CloudIntake, alert.Orange)
	if e.db, err = openDB(o.Path); err != nil {
		return nil, err
	}
	if err := e.load(); err != nil {
		e.db.close()
		return nil, err
	}
	return e, nil
}

func (e *Engine) add(c *crule) {
	e.rules = append(e.rules, c)
	switch {
	case c.Kind == rules.NoData:
		e.tunings = append(e.tunings, c)
		return
	case c.Kind == rules.Event && c.Event.Absent > 0:
		e.absent = append(e.absent, c)
		e.absentBy[c.Event.Kind] = append(e.absentBy[c.Event.Kind], c)
		return
	case c.Kind == rules.Event:
		e.events[c.Event.Kind] = append(e.events[c.Event.Kind], c)
		return
	}
	e.byMetric[c.Input.Metric] = append(e.byMetric[c.Input.Metric], c)
	if c.Input.Humidity != "" {
		e.aux[c.Input.Humidity] = true
	}
	if c.Accumulate != nil && c.Accumulate.Humidity != "" {
		e.aux[c.Accumulate.Humidity] = true
	}
	for _, w := range c.When {
		e.aux[w.Metric] = true
	}
}

func (e *Engine) builtin(id, name string, b Builtin, def alert.Severity) *crule {
	if b.Disabled {
		return nil
	}
	if b.Severity == alert.None {
		b.Severity = def
	}
	r := &rules.Rule{ID: id, Name: name, Kind: rules.NoData, Standard: "fieldwatch built-in", For: b.For,
		Levels: []rules.Level{{Severity: b.Severity}}, Labels: map[string]string{"alertname": name},
		Annotations: builtinNotes[id]}
	c, _ := compile(r, int32(len(e.rules)))
	if b.Severity == alert.None {
		c.Levels = severityLevels() // the severity is its devices'
	}
	e.rules = append(e.rules, c)
	return c
}

// severityLevels are one level per colour, holding from that colour's
// number up: the measure of an alert whose severity is computed.
func severityLevels() []rules.Level {
	out := make([]rules.Level, 0, 4)
	for sev := alert.Blue; sev <= alert.Red; sev++ {
		v := float64(sev)
		out = append(out, rules.Level{Severity: sev, Op: ">=", Set: &v, Clear: &v})
	}
	return out
}

func compile(r *rules.Rule, idx int32) (*crule, error) {
	c := &crule{Rule: r, idx: idx, loc: time.UTC, labels: map[string]string{}}
	for k, v := range r.Labels {
		c.labels[k] = v
	}
	if c.labels["alertname"] == "" {
		c.labels["alertname"] = r.ID
	}
	c.labels["rule"], c.labels["source"] = r.ID, "fieldwatch"
	if (r.Kind == rules.NoData || (r.Kind == rules.Event && r.Event.Absent > 0)) && len(r.Levels) == 1 {
		// The measure is silence / limit: it fires beyond 1.
		one := 1.0
		lv := r.Levels[0]
		lv.Op, lv.Set, lv.Clear = ">", &one, &one
		r.Levels = []rules.Level{lv}
	}
	if r.Classify != nil {
		c.table, _ = standards.Lookup(r.Classify.Table)
	}
	for k, v := range r.Annotations {
		t, err := rules.ParseText(v)
		if err != nil {
			return nil, fmt.Errorf("rule %s: annotations.%s: %w", r.ID, k, err)
		}
		if t != nil {
			if c.texts == nil {
				c.texts = map[string]*template.Template{}
			}
			c.texts[k] = t
		}
	}
	if a := r.Accumulate; a != nil {
		if a.Timezone != "" {
			loc, err := time.LoadLocation(a.Timezone)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", r.ID, err)
			}
			c.loc = loc
		}
		if a.Since != "" {
			c.since, _ = time.Parse("01-02", a.Since)
		}
	}
	return c, nil
}

// Close writes the state and closes the file.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.flush(context.Background(), true)
	if cerr := e.db.close(); err == nil {
		err = cerr
	}
	return err
}

// Observe judges batches' readings and events, in order (a group commit
// hands over every batch of the group at once). It returns once the
// resulting state and notifications are durable, in one write for all of
// them; an error means none of the batches may be acknowledged (judging
// them again is harmless: what the live state has seen is not judged
// twice).
func (e *Engine) Observe(ctx context.Context, bs ...*telemetry.Batch) error {
	began := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.o.Now()
	var pub []*series
	for _, b := range bs {
		pub = e.observe(b, now, pub)
	}
	for _, s := range pub {
		e.schedule(s, now)
	}
	err := e.publish(ctx, now)
	e.m.evalTime(time.Since(began))
	return err
}

// observe judges one batch; pub gathers the series whose alert changed.
func (e *Engine) observe(b *telemetry.Batch, now time.Time, pub []*series) []*series {
	site := b.Site
	for i := range b.Readings {
		r := &b.Readings[i]
		v := r.Value
		if r.Quality == telemetry.Bad || math.IsNaN(v) || math.IsInf(v, 0) {
			e.m.skip("bad_quality")
			continue
		}
		if e.aux[r.Metric] {
			e.remember(b.Gateway, site, r)
		}
		for _, c := range e.byMetric[r.Metric] {
			s := e.get(c, b.Gateway, site, r.Device, r.Metric, now)
			if s == nil {
				continue
			}
			if !r.Time.After(s.Last) && !s.Last.IsZero() {
				e.late(s, r, now)
				continue
			}
			s.Last = r.Time
			if e.judge(s, r, site, false) {
				pub = append(pub, s)
			}
		}
	}
	for i := range b.Events {
		pub = e.observeEvent(b.Gateway, site, &b.Events[i], now, pub)
	}
	e.m.observed(len(b.Readings))
	return pub
}

// get returns the series of rule c for a reading, creating it; nil when
// the rule's selector does not take it.
func (e *Engine) get(c *crule, gw, site, dev, met string, now time.Time) *series {
	k := skey{c.idx, gw, dev, met}
	if c.Kind == rules.Composite {
		k.dev, k.met = "", site
	}
	s, ok := e.series[k]
	if ok && !s.skip {
		return s
	}
	if ok && now.Before(s.recheck) {
		return nil
	}
	profile := ""
	if e.o.Registry != nil {
		profile = e.o.Registry.Profile(gw, dev)
	}
	if !c.Select.Matches(gw, site, dev, profile) {
		e.series[k] = &series{skip: true, recheck: now.Add(5 * time.Minute)}
		return nil
	}
	s = e.newSeries(c, k, site, profile)
	e.series[k] = s
	return s
}

func (e *Engine) newSeries(c *crule, k skey, site, profile string) *series {
	s := &series{rule: c, key: k}
	id := map[string]string{"gateway_id": k.gw}
	if site != "" {
		id["site"] = site
	}
	switch {
	case c.Kind == rules.Composite:
	case c == e.gwRule:
	case c == e.intakeRule:
		id = map[string]string{}
	case c == e.busRule:
		id["bus"] = k.dev
	default:
		id["device"] = k.dev
		if k.met != "" {
			id["metric"] = k.met
		}
	}
	labels := map[string]string{}
	for k, v := range c.labels {
		labels[k] = v
	}
	for k, v := range id {
		labels[k] = v
	}
	if profile != "" {
		labels["profile"] = profile
	}
	s.Levels, s.Source = c.LevelsFor(k.gw, k.dev, site, profile)
	s.A = alert.Alert{Fingerprint: alert.Fingerprint(c.ID, id), Rule: c.ID, Labels: labels, State: alert.Inactive}
	e.index(s)
	return s
}

// index makes s findable by fingerprint and by its peers.
func (e *Engine) index(s *series) {
	e.byFP[s.A.Fingerprint] = s
	switch s.rule.Kind {
	case rules.Event:
		e.evSeries[s] = true
	case rules.Forecast:
		e.fcSeries[s] = true
	}
	for _, pk := range e.peerKeys(s) {
		e.peers[pk] = append(e.peers[pk], s)
	}
	if s.key.met != "" && s.key.dev != "" && s.rule.Kind != rules.Composite {
		nk := skey{0, s.key.gw, s.key.dev, s.key.met}
		e.near[nk] = append(e.near[nk], s)
	}
}

// peerKey identifies one hazard at one place: an alertname, or a metric
// judged against levels, on a device (or, for site-wide rules, a site).
type peerKey struct{ name, gw, site, dev string }

// peerKeys are the hazards s belongs to: its alertname, and for a
// threshold or classification rule on a device's metric, that metric (a
// pond rule and a surface-water class rule on one oxygen probe are one
// hazard: low oxygen there).
func (e *Engine) peerKeys(s *series) []peerKey {
	if s.rule.Kind == rules.NoData || s.rule.Kind == rules.Forecast {
		return nil
	}
	var out []peerKey
	site, dev := s.A.Labels["site"], s.A.Labels["device"]
	if name := s.A.Labels["alertname"]; name != "" {
		out = append(out, peerKey{name, s.key.gw, site, dev})
	}
	if (s.rule.Kind == rules.Threshold || s.rule.Kind == rules.Classification) && s.key.met != "" && dev != "" {
		out = append(out, peerKey{"metric " + s.key.met, s.key.gw, site, dev})
	}
	return out
}

// judge computes the rule's measure for a reading and steps the series;
// it reports whether the instance changed.
func (e *Engine) judge(s *series, r *telemetry.Reading, site string, backfill bool) bool {
	c := s.rule
	v, t, gate := r.Value, r.Time, true
	if r.Unit != "" {
		s.Unit = unitOf(c, r.Unit)
	}
	switch c.Kind {
	case rules.Forecast:
		var judge bool
		if v, gate, judge = e.forecast(s, t, v); !judge {
			return false
		}
	case rules.Rate:
		s.window().add(t, v, c.Change.Window)
		e.windowMoved(s)
		if len(s.Win.P) < c.Change.MinSamples {
			return false
		}
		v = s.Win.change(c.Change.Direction)
	case rules.Accumulation:
		e.windowMoved(s)
		var ok bool
		v, ok = s.accumulate(c, t, v, func() (float64, bool) {
			return e.auxValue(skey{auxDevice, s.key.gw, r.Device, c.Accumulate.Humidity}, t, c.Input.MaxAge)
		})
		if !ok {
			return false
		}
	default:
		if c.Input.Derive == "thi" {
			rh, ok := e.auxValue(skey{auxDevice, s.key.gw, r.Device, c.Input.Humidity}, t, c.Input.MaxAge)
			if !ok {
				e.m.skip("no_humidity")
				return false
			}
			v = standards.THI(v, rh)
		}
		if c.Input.Agg != "last" {
			s.window().add(t, v, c.Input.Window)
			e.windowMoved(s)
			v = s.Win.agg(c.Input.Agg)
		}
		if c.table != nil {
			v = float64(c.table.Classify(v))
		}
		for _, w := range c.When {
			g, ok := e.auxValue(skey{auxSite, s.key.gw, site, w.Metric}, t, w.MaxAge)
			gate = gate && ok && holds(w.Op, g, w.Value)
		}
	}
	flapping := s.Flap.On
	from, changed := s.step(v, t, gate)
	if s.Flap.On != flapping {
		e.touch(s)
		changed = true
	}
	if changed {
		e.touch(s)
		e.record(s, from, backfill || t.Before(e.o.Now().Add(-e.o.LateAfter)))
	}
	return changed
}

// auxValue is the newest remembered value of k no further than maxAge from t.
func (e *Engine) auxValue(k skey, t time.Time, maxAge time.Duration) (float64, bool) {
	x, ok := e.latest[k]
	if !ok || x.t.Sub(t) > maxAge || t.Sub(x.t) > maxAge {
		return 0, false
	}
	return x.v, true
}

func (e *Engine) remember(gw, site string, r *telemetry.Reading) {
	for _, k := range []skey{{auxDevice, gw, r.Device, r.Metric}, {auxSite, gw, site, r.Metric}} {
		if cur, ok := e.latest[k]; !ok || !r.Time.Before(cur.t) {
			e.latest[k] = tv{r.Time, r.Value}
		}
	}
}

// late judges a reading older than what the live state has seen (a
// backlog behind live data, a retried batch) on a shadow of the series:
// its transitions are history, marked backfilled, and page no one.
func (e *Engine) late(s *series, r *telemetry.Reading, now time.Time) {
	e.m.skip("late")
	sh := s.shadow
	if sh == nil || !r.Time.After(sh.Last) {
		sh = &series{rule: s.rule, key: s.key, Levels: s.Levels, Source: s.Source,
			A: alert.Alert{Fingerprint: s.A.Fingerprint, Rule: s.A.Rule, Labels: s.A.Labels, State: alert.Inactive}}
		s.shadow = sh
	}
	sh.Last = r.Time
	sh.shadowOf = s // never written: only its history is kept
	e.judge(sh, r, s.A.Labels["site"], true)
}

func (e *Engine) record(s *series, from alert.State, backfilled bool) {
	a := &s.A
	if from == a.State && a.State != alert.Firing {
		return
	}
	e.m.transition(a.State, a.Severity, backfilled)
	tr := alert.Transition{Fingerprint: a.Fingerprint, Rule: a.Rule, Labels: a.Labels, From: from,
		To: a.State, Severity: a.Severity, Value: a.Value, Unit: s.Unit, Time: a.Since, Backfilled: backfilled}
	// What the page's history shows beside the value: the same texts the
	// alert's annotations give (transitions are rare; this is not hot).
	n := e.annotations(s, a.Severity)
	tr.ValueText = n["value_text"]
	if a.State == alert.Firing {
		tr.Threshold = n["threshold"]
	}
	e.hist = append(e.hist, tr)
}

// schedule publishes a changed series now if its news is fresh, else once
// it has settled.
func (e *Engine) schedule(s *series, now time.Time) {
	if s.A.EvaluatedAt.Before(now.Add(-e.o.LateAfter)) {
		s.settle = now.Add(e.o.Settle)
	} else {
		s.settle = now
	}
	e.settling[s] = true
}

// linkFor is the page of one alert.
func (e *Engine) linkFor(fp string) string {
	if e.o.ExternalURL == "" {
		return ""
	}
	return e.o.ExternalURL + "#alert=" + fp
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// unitOf is the unit of rule c's measure of a metric in unit.
func unitOf(c *crule, unit string) string {
	switch {
	case c.Input.Derive == "thi", c.table != nil:
		return ""
	case c.Accumulate != nil && c.Accumulate.Func == rules.DegreeDays:
		return "°C·d"
	case c.Accumulate != nil && c.Accumulate.Func == rules.THIHours:
		return "THI·h"
	case c.Accumulate != nil && c.Accumulate.Func == rules.HotDays:
		return "d"
	}
	return unit
}
