// Package poller runs the gateway's buses: one scheduler goroutine per
// physical bus (a serial port or a TCP endpoint) that polls every device on
// it in turn, through the requests its profile plans, and hands the readings
// to a sink (the edge buffer).
//
// One owner per bus keeps an RS485 line sane: requests to different unit
// addresses never overlap. A unit that stops answering is retried a bounded
// number of times, then quarantined with exponential backoff, so a dead unit
// costs the bus at most one timeout per backoff period and the others keep
// their schedule.
package poller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Sink takes a device's readings of one poll. The buffer's Append is one.
type Sink func([]telemetry.Reading) error

// Device is one device on a bus.
type Device struct {
	ID       string
	Profile  *profiles.Profile
	Unit     uint8
	Interval time.Duration
	// MaxGap, when not nil, overrides the profile's largest gap to read
	// through when merging registers into one request.
	MaxGap *int
}

// Quarantine says when and for how long a unit that does not answer is
// left alone.
type Quarantine struct {
	After      int           // consecutive failed polls before quarantine (≥ 1)
	Backoff    time.Duration // first quarantine period
	MaxBackoff time.Duration // the period doubles up to this
}

// DefaultQuarantine is used when Options.Quarantine is zero.
var DefaultQuarantine = Quarantine{After: 3, Backoff: 10 * time.Second, MaxBackoff: 5 * time.Minute}

// Options are a bus's settings and collaborators.
type Options struct {
	Name    string
	Client  modbus.Client
	Devices []Device
	Sink    Sink
	// Retries is how many times a failed request is sent again (timeouts,
	// CRC errors; never exceptions) before the poll counts as failed.
	Retries    int
	Quarantine Quarantine
	// Events takes the bus's own events, on the bus goroutine like Sink: a
	// quarantine event when a unit is quarantined and when it is released.
	// Nil drops them.
	Events func([]telemetry.Event) error
	// Changed, if set, is called on the bus goroutine after a device's
	// health changed (unknown, ok, failing, quarantined). It must not block:
	// the uplink's StateChanged.
	Changed func()
	// Clock reports the quality of the clock at acquisition time.
	Clock   func() telemetry.ClockQuality
	Log     *slog.Logger
	Metrics *Metrics
	// Now is the time source (default time.Now).
	Now func() time.Time
}

// Bus polls the devices of one bus.
type Bus struct {
	o   Options
	log *slog.Logger
	m   *Metrics

	devices []*device
	mu      sync.Mutex // guards every device's status
	reads   chan readRequest
}

// readRequest asks Run's goroutine, the bus's one owner, to poll a device
// now (Read).
type readRequest struct {
	id   string
	done chan readResult
}

type readResult struct {
	readings []telemetry.Reading
	status   DeviceStatus
	err      error
}

type device struct {
	Device
	plan   []modbus.Request
	fields []modbus.Field
	next   time.Time
	status DeviceStatus
	bad    map[string]string // metric → why it is bad, to log changes only

	mode        string          // the mode its status register last said; "" before the first
	failedPolls int             // consecutive polls with no answer
	backoff     time.Duration   // current quarantine period
	burst       map[string]bool // error kinds already logged in this failure burst
}

// NewBus prepares a bus; it does not connect.
func NewBus(o Options) *Bus {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Clock == nil {
		o.Clock = func() telemetry.ClockQuality { return telemetry.ClockUnknown }
	}
	if o.Quarantine.After < 1 {
		o.Quarantine = DefaultQuarantine
	}
	b := &Bus{o: o, log: o.Log.With("bus", o.Name), m: o.Metrics, reads: make(chan readRequest)}
	for _, d := range o.Devices {
		m := d.Profile.Modbus
		gap := m.MaxGap
		if d.MaxGap != nil {
			gap = *d.MaxGap
		}
		b.devices = append(b.devices, &device{
			Device: d,
			fields: m.Fields,
			plan:   modbus.Plan(m.Fields, gap, 0),
			status: DeviceStatus{ID: d.ID, Bus: o.Name, Profile: d.Profile.Model, Unit: d.Unit,
				Interval: d.Interval, Health: HealthUnknown, Stats: UnitStats{Exceptions: map[byte]uint64{}}},
			bad:   map[string]string{},
			burst: map[string]bool{},
		})
		for _, k := range modbus.Kinds {
			o.Metrics.errors.WithLabelValues(o.Name, d.ID, k)
		}
	}
	return b
}

// Requests is how many requests one poll of every device takes.
func (b *Bus) Requests() int {
	n := 0
	for _, d := range b.devices {
		n += len(d.plan)
	}
	return n
}

// Run polls until ctx is done. Devices are polled when due, earliest first;
// a device that falls behind skips the missed polls rather than bursting.
func (b *Bus) Run(ctx context.Context) error {
	defer b.o.Client.Close()
	start := b.o.Now()
	for _, d := range b.devices {
		d.next = start
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		// A read waiting is served first, so a bus that is always behind
		// (polls back to back) does not starve it.
		select {
		case req := <-b.reads:
			req.done <- b.readNow(ctx, req.id)
		default:
		}
		d := b.due()
		if wait := d.next.Sub(b.o.Now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			case req := <-b.reads:
				req.done <- b.readNow(ctx, req.id)
				continue
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		b.poll(ctx, d)
		d.next = d.next.Add(d.Interval)
		if now := b.o.Now(); d.next.Before(now) {
			skipped := now.Sub(d.next)/d.Interval + 1
			b.m.overruns.WithLabelValues(b.o.Name, d.ID).Add(float64(skipped))
			d.next = d.next.Add(skipped * d.Interval)
		}
	}
}

// due returns the device to poll next. A quarantined device's polls before
// its quarantine ends are skipped and counted.
func (b *Bus) due() *device {
	var best *device
	for _, d := range b.devices {
		if until := d.quarantinedUntil(); d.next.Before(until) {
			skipped := (until.Sub(d.next) + d.Interval - 1) / d.Interval
			d.next = d.next.Add(skipped * d.Interval)
			b.m.polls.WithLabelValues(b.o.Name, d.ID, "skipped").Add(float64(skipped))
			b.mu.Lock()
			d.status.Stats.SkippedPolls += uint64(skipped)
			b.mu.Unlock()
		}
		if best == nil || d.next.Before(best.next) {
			best = d
		}
	}
	return best
}

func (d *device) quarantinedUntil() time.Time { return d.status.QuarantinedUntil }

// poll reads every request of d's plan once (with retries), hands the
// readings to the sink and updates d's health.
func (b *Bus) poll(ctx context.Context, d *device) []telemetry.Reading {
	probe := !d.status.QuarantinedUntil.IsZero() // one attempt per backoff period
	var out []telemetry.Reading
	var failure error
	answered := false
	for _, req := range d.plan {
		words, err := b.request(ctx, d, req, probe)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failure = fmt.Errorf("read %s %d+%d: %w", req.Table, req.Address, req.Count, err)
			if modbus.Alive(err) {
				answered = true
				continue // an exception or a garbled reply: the unit is there; try its other requests
			}
			break // silence: every further request would cost a full timeout
		}
		answered = true
		at, clock := b.o.Now(), b.o.Clock()
		for _, v := range req.Decode(d.fields, words) {
			f := &d.fields[v.Field]
			q := telemetry.Good
			if v.Bad != "" {
				q = telemetry.Bad
			}
			b.noteBad(d, f.Metric, v.Bad)
			out = append(out, telemetry.Reading{Device: d.ID, Metric: f.Metric, Value: v.Value, Unit: f.Unit,
				Time: at, Quality: q, Clock: clock})
		}
	}
	ev, changed := b.record(d, failure, answered, len(out) > 0)
	if ev != nil {
		b.emit(ev)
	}
	if ev := b.modeEvent(d, out); ev != nil {
		b.emit(ev) // before the readings: they were acquired in this mode
	}
	if changed && b.o.Changed != nil {
		b.o.Changed()
	}
	if len(out) > 0 && b.o.Sink != nil {
		if err := b.o.Sink(out); err != nil {
			b.m.sinkErrors.Inc()
			b.log.Error("cannot store readings", "device", d.ID, "readings", len(out), "err", err)
			return out
		}
		b.m.readings.WithLabelValues(b.o.Name, d.ID).Add(float64(len(out)))
	}
	return out
}

// request sends one request, again after a retryable failure, and keeps the
// unit's statistics.
func (b *Bus) request(ctx context.Context, d *device, req modbus.Request, probe bool) ([]uint16, error) {
	attempts := 1 + b.o.Retries
	if probe {
		attempts = 1
		b.mu.Lock()
		d.status.Stats.Probes++
		b.mu.Unlock()
	}
	var err error
	for a := 0; a < attempts; a++ {
		began := b.o.Now()
		var words []uint16
		words, err = b.o.Client.ReadRegisters(ctx, d.Unit, req.Table, req.Address, req.Count)
		lat := b.o.Now().Sub(began)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		b.m.requestSeconds.WithLabelValues(b.o.Name).Observe(lat.Seconds())
		b.count(d, err, lat)
		if err == nil {
			return words, nil
		}
		if !modbus.Retryable(err) {
			break
		}
	}
	return nil, err
}

func (b *Bus) count(d *device, err error, lat time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &d.status.Stats
	s.Requests++
	if err == nil {
		s.observe(lat)
		return
	}
	kind := modbus.Kind(err)
	b.m.errors.WithLabelValues(b.o.Name, d.ID, kind).Inc()
	switch kind {
	case "timeout":
		s.Timeouts++
	case "crc":
		s.CRCErrors++
	case "exception":
		code := exceptionCode(err)
		s.Exceptions[code]++
		b.m.exceptions.WithLabelValues(b.o.Name, d.ID, fmt.Sprint(code)).Inc()
	default:
		s.OtherErrors++
	}
	if !d.burst[kind] {
		d.burst[kind] = true
		if len(d.burst) == 1 {
			b.log.Warn("device does not answer correctly", "device", d.ID, "unit", d.Unit, "kind", kind, "err", err)
		} else {
			b.log.Warn("device also fails another way", "device", d.ID, "unit", d.Unit, "kind", kind, "err", err)
		}
	}
}

// record updates d's health and quarantine after a poll. It returns the
// quarantine event of a unit quarantined or released (its clock not yet
// set), and whether the health changed.
func (b *Bus) record(d *device, failure error, answered, gotReadings bool) (*telemetry.Event, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &d.status
	was := s.Health
	now := b.o.Now()
	var ev *telemetry.Event
	if was == HealthQuarantined && answered {
		ev = b.quarantineEvent(d, "released", now)
	}
	if failure == nil {
		if s.Health == HealthFailing || s.Health == HealthQuarantined {
			b.log.Info("device answers again", "device", d.ID, "unit", d.Unit, "failed_polls", s.Failures)
		}
		s.Health, s.LastGood, s.LastError, s.Failures, s.QuarantinedUntil = HealthOK, now, "", 0, time.Time{}
		d.failedPolls, d.backoff = 0, 0
		clear(d.burst)
		b.m.polls.WithLabelValues(b.o.Name, d.ID, "ok").Inc()
		b.m.quarantined.WithLabelValues(b.o.Name, d.ID).Set(0)
		return ev, s.Health != was
	}
	s.LastError = failure.Error()
	s.Failures++
	if gotReadings {
		s.LastGood = now
		b.m.polls.WithLabelValues(b.o.Name, d.ID, "partial").Inc()
	} else {
		b.m.polls.WithLabelValues(b.o.Name, d.ID, "error").Inc()
	}
	if answered {
		d.failedPolls = 0 // alive, if troubled: no quarantine
		s.Health, s.QuarantinedUntil = HealthFailing, time.Time{}
		b.m.quarantined.WithLabelValues(b.o.Name, d.ID).Set(0)
		return ev, s.Health != was
	}
	d.failedPolls++
	if d.failedPolls < b.o.Quarantine.After {
		s.Health = HealthFailing
		return nil, s.Health != was
	}
	if d.backoff == 0 {
		d.backoff = b.o.Quarantine.Backoff
	} else {
		d.backoff = min(2*d.backoff, b.o.Quarantine.MaxBackoff)
	}
	if s.Health != HealthQuarantined {
		b.log.Warn("device quarantined: polled once per backoff until it answers", "device", d.ID, "unit", d.Unit,
			"backoff", d.backoff, "failed_polls", d.failedPolls)
	}
	s.Health, s.QuarantinedUntil = HealthQuarantined, now.Add(d.backoff)
	s.Stats.Quarantines++
	b.m.quarantined.WithLabelValues(b.o.Name, d.ID).Set(1)
	if was != HealthQuarantined {
		ev = b.quarantineEvent(d, "quarantined", now)
	}
	return ev, s.Health != was
}

// quarantineEvent describes d entering or leaving quarantine (state
// "quarantined" or "released"), under b.mu: the failed polls in a row and
// the backoff period, and while quarantined the last error.
func (b *Bus) quarantineEvent(d *device, state string, at time.Time) *telemetry.Event {
	e := &telemetry.Event{Device: d.ID, Kind: telemetry.EventQuarantine, Time: at,
		Attrs:  map[string]string{"state": state, "bus": b.o.Name},
		Values: map[string]float64{"failures": float64(d.status.Failures), "backoff_s": d.backoff.Seconds()}}
	if state == "quarantined" && d.status.LastError != "" {
		e.Attrs["error"] = telemetry.AttrText(d.status.LastError)
	}
	return e
}

// emit stamps the bus's own event with the clock's quality and hands it
// to Options.Events; a failure is counted like the readings' and logged.
func (b *Bus) emit(e *telemetry.Event) {
	if b.o.Events == nil {
		return
	}
	e.Clock = b.o.Clock()
	if err := b.o.Events([]telemetry.Event{*e}); err != nil {
		b.m.sinkErrors.Inc()
		b.log.Error("cannot store event", "device", e.Device, "kind", e.Kind, "state", e.Attrs["state"], "err", err)
	}
}

// modeEvent is the mode event of a device whose status register (the
// profile's modbus.status) says another mode than it last did — or, at the
// first reading after the gateway starts, whatever it says, so that a
// consumer that missed the past knows.
func (b *Bus) modeEvent(d *device, rs []telemetry.Reading) *telemetry.Event {
	st := d.Profile.Modbus.Status
	if st == nil {
		return nil
	}
	for _, r := range rs {
		if r.Metric != st.Metric || r.Quality != telemetry.Good {
			continue
		}
		mode := st.Mode(r.Value)
		if mode == d.mode {
			return nil
		}
		if d.mode != "" || mode != telemetry.ModeNormal {
			b.log.Info("device mode", "device", d.ID, "mode", mode, "was", d.mode, "status", r.Value)
		}
		d.mode = mode
		return &telemetry.Event{Device: d.ID, Kind: telemetry.EventMode, Time: r.Time,
			Attrs:  map[string]string{"state": mode, "source": "register"},
			Values: map[string]float64{"raw": r.Value}}
	}
	return nil
}

func (b *Bus) noteBad(d *device, metric, reason string) {
	if d.bad[metric] == reason {
		return
	}
	if reason != "" {
		b.log.Warn("value marked bad", "device", d.ID, "metric", metric, "reason", reason)
		b.m.badValues.WithLabelValues(b.o.Name, d.ID).Inc()
	} else if d.bad[metric] != "" {
		b.log.Info("value good again", "device", d.ID, "metric", metric)
	}
	d.bad[metric] = reason
}

// Status returns the health and statistics of every device on the bus.
func (b *Bus) Status() []DeviceStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]DeviceStatus, len(b.devices))
	for i, d := range b.devices {
		out[i] = d.status.clone()
	}
	return out
}

// Read polls the device id once, now, on the goroutine of Run (which must
// be running: the bus has one owner), between its scheduled polls, and
// returns its readings — stored like those of any poll — and its status
// afterwards (a remote read command). It gives up when ctx is done.
func (b *Bus) Read(ctx context.Context, id string) ([]telemetry.Reading, DeviceStatus, error) {
	req := readRequest{id: id, done: make(chan readResult, 1)}
	select {
	case b.reads <- req:
	case <-ctx.Done():
		return nil, DeviceStatus{}, fmt.Errorf("bus %s is busy: %w", b.o.Name, ctx.Err())
	}
	select {
	case r := <-req.done:
		return r.readings, r.status, r.err
	case <-ctx.Done():
		return nil, DeviceStatus{}, fmt.Errorf("device %s did not answer in time: %w", id, ctx.Err())
	}
}

func (b *Bus) readNow(ctx context.Context, id string) readResult {
	rs, st, err := b.ReadOnce(ctx, id)
	return readResult{readings: rs, status: st, err: err}
}

// HasDevice reports whether id is a device of the bus.
func (b *Bus) HasDevice(id string) bool {
	for _, d := range b.devices {
		if d.ID == id {
			return true
		}
	}
	return false
}

// ReadOnce polls the device id once, outside the schedule (for the
// technician's `read` command; do not call it while Run runs), and returns
// its readings and status afterwards.
func (b *Bus) ReadOnce(ctx context.Context, id string) ([]telemetry.Reading, DeviceStatus, error) {
	for _, d := range b.devices {
		if d.ID == id {
			rs := b.poll(ctx, d)
			b.mu.Lock()
			defer b.mu.Unlock()
			return rs, d.status.clone(), nil
		}
	}
	return nil, DeviceStatus{}, fmt.Errorf("no device %q on bus %s", id, b.o.Name)
}
