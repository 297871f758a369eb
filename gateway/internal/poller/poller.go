// Package poller runs the gateway's buses: one scheduler goroutine per
// physical bus that polls every device on it in turn, through the requests
// its profile plans, and hands the readings to a sink (the edge buffer).
//
// One owner per bus is the rule that keeps an RS485 line or a serial device
// server sane: requests to different unit addresses never overlap.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
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
}

// Health of a device as the gateway sees it.
const (
	HealthUnknown = "unknown" // not polled yet
	HealthOK      = "ok"      // the last poll answered
	HealthFailing = "failing" // the last poll failed
)

// DeviceStatus is a device's health for the state message and /status.
type DeviceStatus struct {
	ID, Bus, Profile string
	Unit             uint8
	Interval         time.Duration
	Health           string
	LastGood         time.Time
	LastError        string
	Failures         int // consecutive failed polls
}

// Bus polls the devices of one bus.
type Bus struct {
	name    string
	client  modbus.Client
	sink    Sink
	clock   func() telemetry.ClockQuality
	now     func() time.Time
	log     *slog.Logger
	metrics *Metrics

	devices []*device
	mu      sync.Mutex // guards device status
}

type device struct {
	Device
	plan   []modbus.Request
	fields []modbus.Field
	next   time.Time
	status DeviceStatus
	bad    map[string]string // metric → reason, to log changes only
}

// Options are a bus's collaborators.
type Options struct {
	Name    string
	Client  modbus.Client
	Devices []Device
	Sink    Sink
	// Clock reports the quality of the clock at acquisition time.
	Clock   func() telemetry.ClockQuality
	Log     *slog.Logger
	Metrics *Metrics
	// Now is the time source (default time.Now).
	Now func() time.Time
}

// NewBus prepares a bus; it does not connect.
func NewBus(o Options) *Bus {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Clock == nil {
		o.Clock = func() telemetry.ClockQuality { return telemetry.ClockUnknown }
	}
	b := &Bus{name: o.Name, client: o.Client, sink: o.Sink, clock: o.Clock, now: o.Now,
		log: o.Log.With("bus", o.Name), metrics: o.Metrics}
	for _, d := range o.Devices {
		m := d.Profile.Modbus
		b.devices = append(b.devices, &device{
			Device: d,
			fields: m.Fields,
			plan:   modbus.Plan(m.Fields, m.MaxGap, 0),
			status: DeviceStatus{ID: d.ID, Bus: o.Name, Profile: d.Profile.Model, Unit: d.Unit,
				Interval: d.Interval, Health: HealthUnknown},
			bad: map[string]string{},
		})
	}
	return b
}

// Status returns the health of every device on the bus.
func (b *Bus) Status() []DeviceStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]DeviceStatus, len(b.devices))
	for i, d := range b.devices {
		out[i] = d.status
	}
	return out
}

// Run polls until ctx is done. Devices are polled when due, earliest first;
// a device that falls behind skips the missed polls rather than bursting.
func (b *Bus) Run(ctx context.Context) error {
	defer b.client.Close()
	start := b.now()
	for _, d := range b.devices {
		d.next = start
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		d := b.devices[0]
		for _, x := range b.devices[1:] {
			if x.next.Before(d.next) {
				d = x
			}
		}
		if wait := d.next.Sub(b.now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		b.poll(ctx, d)
		d.next = d.next.Add(d.Interval)
		if now := b.now(); d.next.Before(now) {
			skipped := now.Sub(d.next)/d.Interval + 1
			b.metrics.overruns.WithLabelValues(b.name, d.ID).Add(float64(skipped))
			d.next = d.next.Add(skipped * d.Interval)
		}
	}
}

// poll reads every request of d's plan; readings of one request share its
// completion time.
func (b *Bus) poll(ctx context.Context, d *device) {
	var out []telemetry.Reading
	var failure error
	for _, req := range d.plan {
		began := b.now()
		words, err := b.client.ReadRegisters(ctx, d.Unit, req.Table, req.Address, req.Count)
		at := b.now()
		b.metrics.requestSeconds.WithLabelValues(b.name).Observe(at.Sub(began).Seconds())
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failure = fmt.Errorf("read %s %d+%d: %w", req.Table, req.Address, req.Count, err)
			b.metrics.errors.WithLabelValues(b.name, d.ID, errorKind(err)).Inc()
			if !isException(err) {
				// The connection may be out of step (a late reply to a
				// timed-out request); start afresh on the next request.
				_ = b.client.Close()
			}
			break
		}
		clock := b.clock()
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
	b.record(d, failure)
	if len(out) == 0 {
		return
	}
	if err := b.sink(out); err != nil {
		b.metrics.sinkErrors.Inc()
		b.log.Error("cannot store readings", "device", d.ID, "readings", len(out), "err", err)
		return
	}
	b.metrics.readings.WithLabelValues(b.name, d.ID).Add(float64(len(out)))
}

// record updates d's health, logging only changes so a dead device does not
// flood the log.
func (b *Bus) record(d *device, failure error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &d.status
	if failure == nil {
		if s.Health == HealthFailing {
			b.log.Info("device answers again", "device", d.ID, "unit", d.Unit, "after_failures", s.Failures)
		}
		s.Health, s.LastGood, s.LastError, s.Failures = HealthOK, b.now(), "", 0
		b.metrics.polls.WithLabelValues(b.name, d.ID, "ok").Inc()
		return
	}
	if s.Health != HealthFailing {
		b.log.Warn("device does not answer", "device", d.ID, "unit", d.Unit, "err", failure)
	}
	s.Health, s.LastError = HealthFailing, failure.Error()
	s.Failures++
	b.metrics.polls.WithLabelValues(b.name, d.ID, "error").Inc()
}

func (b *Bus) noteBad(d *device, metric, reason string) {
	if d.bad[metric] == reason {
		return
	}
	if reason != "" {
		b.log.Warn("value marked bad", "device", d.ID, "metric", metric, "reason", reason)
		b.metrics.badValues.WithLabelValues(b.name, d.ID).Inc()
	} else if d.bad[metric] != "" {
		b.log.Info("value good again", "device", d.ID, "metric", metric)
	}
	d.bad[metric] = reason
}

func isException(err error) bool {
	var e *modbus.ExceptionError
	return errors.As(err, &e)
}

// errorKind classifies an error for the errors counter.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case isException(err):
		return "exception"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ne):
		return "connection"
	}
	return "protocol"
}
