// Package streams runs the gateway's stream devices — NMEA instruments,
// RFID/NFC readers, NDBC feeds — each in one goroutine that owns its serial
// port, TCP connection or document URL, feeds what arrives to the device's
// decoder, and hands the readings and events to the buffer.
//
// A port that fails (a reader unplugged mid-frame, a TCP link that drops) is
// reopened with backoff; the decoder is told (Start) and discards the cut
// frame. The loss and the return of the line are each a connection event
// (once per outage, not per attempt). Health is judged from the decoder's
// statistics: a device that has sent nothing for SilentAfter is failing.
package streams

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Sink takes what a device produced; the gateway's buffer writes it.
type Sink func(stream.Output) error

// Device is one stream device.
type Device struct {
	ID      string
	Profile string
	// Open connects to the device: a serial port, a TCP connection.
	Open func(ctx context.Context) (Conn, error)
	// Fetch, instead of Open, reads a whole document each Interval (an NDBC
	// file or URL).
	Fetch    func(ctx context.Context) ([]byte, error)
	Interval time.Duration
	Decoder  stream.Decoder
	// CharTime is how long one character takes on the device's line; the
	// lines of a chunk that arrived at once are dated back by it (1µs
	// apart when 0, as over TCP), so that no two share a time.
	CharTime time.Duration
	// SilentAfter marks the device failing when nothing has been accepted
	// for this long; 0 disables it (a reader is quiet without tags).
	SilentAfter time.Duration
	// Clock gives the clock quality of the runner's own events (connection
	// lost and restored); ClockUnknown when nil.
	Clock func() telemetry.ClockQuality
	// Changed, if set, is called on the runner's goroutine when the
	// device's health changes (silence included, noticed within about a
	// second). It must not block: the uplink's StateChanged.
	Changed func()
}

// Conn is an open port or connection. Read returns 0, nil when nothing
// arrived within its timeout (about a second), so the runner can tick.
type Conn interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
}

// Status is a stream device's health.
type Status struct {
	ID, Profile string
	Health      string // ok, failing, unknown
	Connected   bool
	LastFrame   time.Time
	Frames      uint64
	Errors      map[string]uint64
	Reconnects  uint64
	LastError   string
	// LastRead is when the decoder last gave readings or events.
	LastRead time.Time
}

// Runner runs one device.
type Runner struct {
	d   Device
	snk Sink
	log *slog.Logger
	m   *Metrics
	now func() time.Time

	mu          sync.Mutex
	status      Status
	counts      map[string]uint64 // the decoder's error counts, as exported to the metrics
	frames      uint64
	connectedAt time.Time // when the port last opened; silence is counted from it

	// Owned by Run's goroutine.
	lost     bool   // the line failed and has not reopened: a connection event said so
	reported string // the health Changed last heard of
}

// NewRunner prepares a device; Run starts it.
func NewRunner(d Device, sink Sink, log *slog.Logger, m *Metrics) *Runner {
	r := &Runner{d: d, snk: sink, log: log.With("device", d.ID), m: m, now: time.Now,
		status: Status{ID: d.ID, Profile: d.Profile, Health: "unknown"}, counts: map[string]uint64{}, reported: "unknown"}
	return r
}

// Status reports the device's health. It is safe to call from any
// goroutine: the decoder's counters are copied by the runner's goroutine.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.Errors = maps.Clone(r.counts)
	r.judgeSilence(&s)
	return s
}

// judgeSilence marks s failing when the device has been silent for
// SilentAfter. Under r.mu.
func (r *Runner) judgeSilence(s *Status) {
	if s.Health != "failing" && r.d.SilentAfter > 0 {
		last := s.LastFrame
		if last.IsZero() {
			last = r.started()
		}
		if !last.IsZero() && r.now().Sub(last) > r.d.SilentAfter {
			s.Health, s.LastError = "failing", fmt.Sprintf("nothing received for %v", r.now().Sub(last).Round(time.Second))
		}
	}
}

// checkHealth tells Changed when the health differs from what it last
// heard. On the runner's goroutine.
func (r *Runner) checkHealth() {
	if r.d.Changed == nil {
		return
	}
	r.mu.Lock()
	s := r.status
	r.judgeSilence(&s)
	r.mu.Unlock()
	if s.Health != r.reported {
		r.reported = s.Health
		r.d.Changed()
	}
}

func (r *Runner) started() time.Time { return r.connectedAt }

// Device is what the runner runs.
func (r *Runner) Device() Device { return r.d }

// Run runs the device until ctx is done.
func (r *Runner) Run(ctx context.Context) error {
	if r.d.Fetch != nil {
		return r.runFetch(ctx)
	}
	backoff := time.Second
	for ctx.Err() == nil {
		c, err := r.d.Open(ctx)
		if err != nil {
			r.failed(fmt.Errorf("cannot open: %w", err))
			r.lose(err)
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = time.Second
		err = r.serve(ctx, c)
		c.Close()
		if ctx.Err() != nil {
			return nil
		}
		r.failed(err)
		r.lose(err)
		r.m.reconnects.WithLabelValues(r.d.ID).Inc()
		r.mu.Lock()
		r.status.Reconnects++
		r.mu.Unlock()
		if !sleep(ctx, backoff) {
			return nil
		}
	}
	return nil
}

// serve reads from an open connection until it fails or ctx is done.
func (r *Runner) serve(ctx context.Context, c Conn) error {
	r.mu.Lock()
	wasFailing := r.status.Health == "failing"
	r.status.Connected, r.status.Health, r.status.LastError = true, "ok", ""
	r.connectedAt = r.now()
	r.mu.Unlock()
	r.m.connected.WithLabelValues(r.d.ID).Set(1)
	defer r.m.connected.WithLabelValues(r.d.ID).Set(0)
	if wasFailing {
		r.log.Info("stream device connected again")
	}
	if r.lost {
		r.lost = false
		r.emit(r.connectionEvent("restored", nil))
	}
	r.checkHealth()
	if err := r.handle(c, r.d.Decoder.Start(r.now())); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	lastTick := r.now()
	for ctx.Err() == nil {
		n, err := c.Read(buf)
		now := r.now()
		if n > 0 {
			if herr := r.handle(c, r.feed(buf[:n], now)); herr != nil {
				return herr
			}
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if now.Sub(lastTick) >= time.Second || n == 0 {
			lastTick = now
			if herr := r.handle(c, r.d.Decoder.Tick(now)); herr != nil {
				return herr
			}
			r.checkHealth() // silence begins or ends
		}
	}
	return nil
}

// feed hands a chunk to the decoder line by line, each line dated when its
// last byte arrived: the chunk's arrival time less the wire time of the
// bytes after it. A burst of sentences read at once (a slow reader, a
// multiplexer's backlog) thus keeps one time per sentence, and two
// readings of one metric in a chunk are two samples, not one that
// overwrites the other in the store.
func (r *Runner) feed(b []byte, now time.Time) stream.Output {
	step := r.d.CharTime
	if step <= 0 {
		step = time.Microsecond
	}
	var out stream.Output
	for len(b) > 0 {
		end := bytes.IndexByte(b, '\n') + 1
		if end == 0 {
			end = len(b)
		}
		out.Add(r.d.Decoder.Feed(b[:end], now.Add(-time.Duration(len(b)-end)*step)))
		b = b[end:]
	}
	return out
}

// handle sends what the decoder asked to send and stores what it produced.
func (r *Runner) handle(c Conn, out stream.Output) error {
	r.export()
	if len(out.Send) > 0 {
		if _, err := c.Write(out.Send); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return r.store(out)
}

// store hands readings and events to the sink; a sink error is logged and
// counted (the disk is full or failing) but does not close the port.
func (r *Runner) store(out stream.Output) error {
	if len(out.Readings) == 0 && len(out.Events) == 0 {
		return nil
	}
	r.mu.Lock()
	r.status.LastRead = r.now()
	r.mu.Unlock()
	if err := r.snk(out); err != nil {
		r.m.sinkErrors.Inc()
		r.log.Error("cannot store what the device sent", "readings", len(out.Readings), "events", len(out.Events), "err", err)
		return nil
	}
	r.m.readings.WithLabelValues(r.d.ID).Add(float64(len(out.Readings)))
	r.m.events.WithLabelValues(r.d.ID).Add(float64(len(out.Events)))
	return nil
}

// export copies the decoder's counters to the status and the metrics.
func (r *Runner) export() {
	st := r.d.Decoder.Stats()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.Frames, r.status.LastFrame = st.Frames, st.LastFrame
	if d := st.Frames - r.frames; d > 0 {
		r.m.frames.WithLabelValues(r.d.ID).Add(float64(d))
		r.frames = st.Frames
	}
	for kind, n := range st.Errors {
		if d := n - r.counts[kind]; d > 0 {
			r.m.errors.WithLabelValues(r.d.ID, kind).Add(float64(d))
			if r.counts[kind] == 0 {
				r.log.Warn("stream device sent input that was refused", "kind", kind)
			}
			r.counts[kind] = n
		}
	}
}

// failed records a connection failure, logging it once per burst.
func (r *Runner) failed(err error) {
	r.mu.Lock()
	if r.status.Health != "failing" {
		r.log.Warn("stream device lost; retrying", "err", err)
	}
	r.status.Connected, r.status.Health, r.status.LastError = false, "failing", err.Error()
	r.mu.Unlock()
	r.checkHealth()
}

// lose records, once per outage, that the line failed: a port that would
// not open (at start too) or a connection that broke.
func (r *Runner) lose(err error) {
	if !r.lost {
		r.lost = true
		r.emit(r.connectionEvent("lost", err))
	}
}

// connectionEvent says the device's line was lost (with why) or restored.
func (r *Runner) connectionEvent(state string, err error) telemetry.Event {
	e := telemetry.Event{Device: r.d.ID, Kind: telemetry.EventConnection, Time: r.now(), Clock: telemetry.ClockUnknown,
		Attrs: map[string]string{"state": state}}
	if r.d.Clock != nil {
		e.Clock = r.d.Clock()
	}
	if err != nil {
		e.Attrs["error"] = telemetry.AttrText(err.Error())
	}
	return e
}

// emit hands the runner's own event to the sink. It is not the device's
// output: it neither counts as a reading nor dates LastRead.
func (r *Runner) emit(e telemetry.Event) {
	if r.snk == nil {
		return
	}
	if err := r.snk(stream.Output{Events: []telemetry.Event{e}}); err != nil {
		r.m.sinkErrors.Inc()
		r.log.Error("cannot store event", "kind", e.Kind, "state", e.Attrs["state"], "err", err)
	}
}

// runFetch polls a document every Interval.
func (r *Runner) runFetch(ctx context.Context) error {
	for {
		body, err := r.d.Fetch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.failed(err)
		} else {
			r.mu.Lock()
			if r.status.Health == "failing" {
				r.log.Info("stream source answers again")
			}
			r.status.Connected, r.status.Health, r.status.LastError = true, "ok", ""
			r.connectedAt = r.now()
			r.mu.Unlock()
			out := r.d.Decoder.Feed(body, r.now())
			r.export()
			_ = r.store(out)
			r.checkHealth()
		}
		if !sleep(ctx, r.d.Interval) {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
